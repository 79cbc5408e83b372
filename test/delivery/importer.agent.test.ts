import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, type TopicClient } from '@keyway/clients';
import type { Batch } from '@keyway/contracts';
import { createAgent, fileSink, importerFeeds, startImporter, type Agent, type AgentHealth, type Sink } from '@keyway/importer';
import { silentLogger } from '@keyway/kit';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant, readLines, waitForLines } from '../helpers.ts';

/**
 * The agent as users run it (issue 12): the stream by default, writes in delivery order, each batch
 * completed after its own durable write; locks renewed while a slow sink write is in flight; a
 * failed write abandoned and delivered again; several feeds in one process, with health and lag on
 * a local HTTP endpoint.
 */

const LOCK_SEC = 2;
let suite: Suite;
beforeAll(async () => {
  // a lock lapses after 2 s unless renewed, so a 5 s write outlives it twice over
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, topic: { lockDurationSec: LOCK_SEC } });
});
/** the sink folders the tests made, removed at the end */
const dirs: string[] = [];
const scratch = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};
afterAll(async () => {
  await suite?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

type Feed = Awaited<ReturnType<typeof feed>>;

async function feed() {
  const { tenant, feed: topic, email } = await provisionTenant(suite);
  const producer = await suite.operator.createUser(tenant, { email: `producer@${tenant}.example`, password: PASSWORD, roles: ['producer', 'full-control'] });
  const { refresh_token } = await suite.pas.password(producer.email, PASSWORD);
  const { sas_key: sendKey } = await suite.pac.sas({ refresh_token, rights: 'send' });
  const { sas_key: listenKey } = await suite.pac.sas({ refresh_token, rights: 'listen' });
  const publish = async (count: number): Promise<Batch[]> => {
    const batches = Array.from({ length: count }, (_, seq) => makeBatch(tenant, topic, seq));
    for (const batch of batches) await suite.topic.publish(sendKey, batch);
    return batches;
  };
  const nothingLeft = async () => (await suite.topic.receive(listenKey, tenant, topic, 'default', 1)) === null;
  return { tenant, topic, email, publish, nothingLeft, dir: scratch('keyway-agent-') };
}

/** polls until `done` holds; fails the test when it does not within timeoutMs */
async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

const idsIn = (path: string) => readLines(path).map((line) => (JSON.parse(line) as { id: string }).id);

/** The agent as it ships, logged in as `email`, started; `topic` may wrap the suite's client to watch or change its calls. */
/**
 * Runs `body` with an agent pulling the feed into `sink` (through `topic`), stops the agent whatever
 * happens, then checks that nothing was left on the subscription.
 */
async function withAgent(f: Feed, sink: Sink, body: (agent: Agent) => Promise<void>, topic: TopicClient = suite.topic): Promise<void> {
  const agent = createAgent(
    { credentials: { kind: 'password', username: f.email, password: PASSWORD }, subscription: 'default', receiveTimeoutSec: 1 },
    { pas: suite.pas, pac: suite.pac, topic, sink, logger: silentLogger },
  );
  agent.start();
  try {
    await body(agent);
  } finally {
    await agent.stop();
  }
  expect(await f.nothingLeft()).toBe(true);
}

/** The file sink, with a hook before each write (to slow it down or make it fail). */
async function hookedSink(path: string, before: (batch: Batch) => Promise<void>): Promise<Sink> {
  const inner = await fileSink(path);
  return {
    description: inner.description,
    async write(batch) {
      await before(batch);
      await inner.write(batch);
    },
    close: () => inner.close(),
  };
}

describe('the importer agent (stream, pipelined writes)', () => {
  it('renews the locks while a slow write is in flight: every batch written once, in order, and completed', async () => {
    const f = await feed();
    const sinkFile = join(f.dir, 'batches.jsonl');
    let slow = true;
    const sink = await hookedSink(sinkFile, async () => {
      if (!slow) return;
      slow = false;
      await sleep(LOCK_SEC * 2500);
    });
    await withAgent(f, sink, async (agent) => {
      const published = await f.publish(5);
      await waitForLines(sinkFile, published.length, 20_000);
      // the last complete goes out just after the last write
      await sleep(500);
      expect(idsIn(sinkFile)).toEqual(published.map((b) => b.id));
      expect(agent.stats.lockRenewals).toBeGreaterThanOrEqual(2);
      expect(agent.stats.locksLost).toBe(0);
      expect(agent.stats.duplicatesDropped).toBe(0);
      expect(agent.health()).toMatchObject({ healthy: true, tenant: f.tenant, behind: 0, written: 5 });
    });
  }, 60_000);

  it('abandons a batch whose write failed, with those queued behind it; they come back and each is written once', async () => {
    const f = await feed();
    const sinkFile = join(f.dir, 'batches.jsonl');
    let failures = 0;
    const sink = await hookedSink(sinkFile, async (batch) => {
      if (batch.seq === 2 && failures === 0) {
        failures += 1;
        throw new Error('disk full');
      }
    });
    await withAgent(f, sink, async (agent) => {
      const published = await f.publish(6);
      await waitForLines(sinkFile, published.length, 20_000);
      await sleep(500);
      const ids = idsIn(sinkFile);
      expect(failures).toBe(1);
      expect([...ids].sort()).toEqual(published.map((b) => b.id).sort());
      // what was written before the failure stays first, in delivery order
      expect(ids.slice(0, 2)).toEqual(published.slice(0, 2).map((b) => b.id));
      expect(agent.stats.errors).toBeGreaterThanOrEqual(1);
    });
  }, 60_000);

  it('completes a backlog in few requests: one in flight at a time, the batches written meanwhile together in the next; a lone batch at once', async () => {
    const f = await feed();
    const sinkFile = join(f.dir, 'batches.jsonl');
    const published = await f.publish(200);
    /** the lock count of each complete request, and the most in flight at once */
    const requests: number[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    const topic: TopicClient = {
      ...suite.topic,
      completeMany: async (...args) => {
        requests.push(args[4].length);
        mostInFlight = Math.max(mostInFlight, ++inFlight);
        try {
          // a complete slower than a write, as on a loaded service: the batches written meanwhile must wait for it
          await sleep(40);
          return await suite.topic.completeMany(...args);
        } finally {
          inFlight -= 1;
        }
      },
    };
    await withAgent(
      f,
      await fileSink(sinkFile),
      async (agent) => {
        await waitForLines(sinkFile, published.length, 60_000);
        await waitFor(() => requests.reduce((sum, n) => sum + n, 0) === published.length && inFlight === 0, 10_000);
        expect(idsIn(sinkFile)).toEqual(published.map((b) => b.id));
        expect(mostInFlight).toBe(1);
        expect(requests.length).toBeLessThanOrEqual(published.length / 4);
        expect(Math.max(...requests)).toBeGreaterThan(1);
        // nothing in flight: the next batch alone is completed without waiting for company
        const before = requests.length;
        const [lone] = await f.publish(1);
        await waitForLines(sinkFile, published.length + 1, 10_000);
        await waitFor(() => requests.length === before + 1 && inFlight === 0, 5000);
        expect(requests.at(-1)).toBe(1);
        expect(idsIn(sinkFile).at(-1)).toBe(lone!.id);
        expect(agent.health()).toMatchObject({ behind: 0, written: published.length + 1, locksLost: 0, errors: 0, duplicatesDropped: 0 });
      },
      topic,
    );
  }, 90_000);

  it('against a topic service without the batch complete (rolling upgrade: 404 not_found) completes one batch a request, losing nothing', async () => {
    const f = await feed();
    const sinkFile = join(f.dir, 'batches.jsonl');
    const published = await f.publish(30);
    let batchAttempts = 0;
    let singles = 0;
    const topic: TopicClient = {
      ...suite.topic,
      // what an older topic service answers on the batch path: the 404 of an unknown endpoint
      completeMany: async () => {
        batchAttempts += 1;
        throw new ApiError(404, 'not_found', 'no such endpoint');
      },
      complete: async (...args) => {
        const completed = await suite.topic.complete(...args);
        singles += 1;
        return completed;
      },
    };
    await withAgent(
      f,
      await fileSink(sinkFile),
      async (agent) => {
        await waitForLines(sinkFile, published.length, 60_000);
        await waitFor(() => singles === published.length, 10_000);
        // the agent counts a batch as done once its complete has answered: the health of the last one follows it
        await waitFor(() => agent.health().behind === 0, 10_000);
        expect(idsIn(sinkFile)).toEqual(published.map((b) => b.id));
        expect(batchAttempts).toBe(1);
        expect(agent.health()).toMatchObject({ behind: 0, written: published.length, locksLost: 0, errors: 0, duplicatesDropped: 0 });
      },
      topic,
    );
  }, 90_000);

  it('pulls several feeds in one process (FEEDS_FILE) and answers their health and lag on 127.0.0.1', async () => {
    const [a, b] = [await feed(), await feed()];
    const dir = scratch('keyway-feeds-');
    writeFileSync(join(dir, 'ca.crt'), suite.pki.ca.certPem);
    const feedsFile = join(dir, 'feeds.json');
    writeFileSync(feedsFile, JSON.stringify([a, b].map((f, i) => ({ KEYWAY_USERNAME: f.email, KEYWAY_PASSWORD: PASSWORD, SINK_FILE: join(dir, `feed-${i}.jsonl`), STREAM_TIMEOUT_SEC: 5 }))), {
      mode: 0o600,
    });
    const feeds = importerFeeds({
      PAS_URL: suite.urls.pas,
      PAC_URL: suite.urls.pac,
      TOPIC_URL: suite.urls.topic,
      TLS_CA_FILE: join(dir, 'ca.crt'),
      FEEDS_FILE: feedsFile,
      HEALTH_PORT: '0',
      LOG_LEVEL: 'silent',
    });
    expect(feeds.map((feed) => feed.STATE_FILE)).toEqual([join(dir, 'feed-0.jsonl.checkpoint'), join(dir, 'feed-1.jsonl.checkpoint')]);
    const importer = await startImporter(feeds, silentLogger);
    try {
      const [sentA, sentB] = [await a.publish(4), await b.publish(3)];
      await waitForLines(join(dir, 'feed-0.jsonl'), sentA.length, 20_000);
      await waitForLines(join(dir, 'feed-1.jsonl'), sentB.length, 20_000);
      expect(idsIn(join(dir, 'feed-0.jsonl'))).toEqual(sentA.map((x) => x.id));
      expect(idsIn(join(dir, 'feed-1.jsonl'))).toEqual(sentB.map((x) => x.id));
      await sleep(500);
      const response = await fetch(`http://127.0.0.1:${importer.healthPort}/health`);
      expect(response.status).toBe(200);
      const body = (await response.json()) as { healthy: boolean; feeds: AgentHealth[] };
      expect(body.healthy).toBe(true);
      expect(body.feeds).toMatchObject([
        { healthy: true, tenant: a.tenant, topic: a.topic, subscription: 'default', behind: 0, written: 4 },
        { healthy: true, tenant: b.tenant, topic: b.topic, subscription: 'default', behind: 0, written: 3 },
      ]);
      for (const health of body.feeds) expect(Date.parse(health.lastDurableWrite ?? '')).toBeGreaterThan(Date.now() - 30_000);
      expect((await fetch(`http://127.0.0.1:${importer.healthPort}/other`)).status).toBe(404);
    } finally {
      await importer.stop();
    }
    expect(await a.nothingLeft()).toBe(true);
    expect(await b.nothingLeft()).toBe(true);
  }, 90_000);
});
