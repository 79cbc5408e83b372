import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Batch } from '@keyway/contracts';
import { importerFeeds, startImporter } from '@keyway/importer';
import { silentLogger } from '@keyway/kit';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant, readLines, waitForLines } from '../helpers.ts';

/**
 * Issue 16, replay through the whole chain on RabbitMQ: a new subscription listed from a point in time
 * (the operator API) gets the feed's history since then; the importer's REPLAY_FROM brings the history
 * into its sink again, once.
 */
let suite: Suite;
const dirs: string[] = [];
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
});
afterAll(async () => {
  await suite?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function feed() {
  const { tenant, feed: topic, email } = await provisionTenant(suite);
  const { refresh_token } = await suite.pas.password(email, PASSWORD);
  const { sas_key: sendKey } = await suite.pac.sas({ refresh_token, rights: 'send' });
  const { sas_key: listenKey } = await suite.pac.sas({ refresh_token, rights: 'listen' });
  let seq = 0;
  const publish = async (count: number): Promise<Batch[]> => {
    const batches = Array.from({ length: count }, () => makeBatch(tenant, topic, seq++));
    for (const batch of batches) await suite.topic.publish(sendKey, batch);
    return batches;
  };
  /** receives and completes until the subscription is empty: the ids, in order */
  const drain = async (subscription: string): Promise<string[]> => {
    const ids: string[] = [];
    for (;;) {
      const message = await suite.topic.receive(listenKey, tenant, topic, subscription, 2);
      if (!message) return ids;
      ids.push(message.message_id);
      await suite.topic.complete(listenKey, tenant, topic, subscription, message.message_id, message.lock_token);
    }
  };
  return { tenant, topic, email, publish, drain };
}

/** a gap of more than a second, so the broker's stream timestamps fall clearly on either side of the time returned */
async function pointInTime(): Promise<Date> {
  await sleep(1100);
  const at = new Date();
  await sleep(1100);
  return at;
}

describe('replay through the chain (RabbitMQ)', { timeout: 90_000 }, () => {
  it('a subscription listed with start_at holds the batches published since then, in order, and the new ones', async () => {
    const f = await feed();
    await f.publish(2);
    const since = await pointInTime();
    const history = await f.publish(3);
    expect(await f.drain('default')).toHaveLength(5);

    const added = await suite.operator.createSubscription(f.tenant, f.topic, 'restored', { startAt: since });
    expect(added).toMatchObject({ name: 'restored', created: true });
    const later = await f.publish(1);
    // the declare answers once the replay has started, not copied: the new batch may come between the copies
    const deadline = Date.now() + 20_000;
    let ids: string[] = [];
    while (ids.length < 4 && Date.now() < deadline) ids = [...ids, ...(await f.drain('restored'))];
    const replayed = history.map((b) => b.id);
    expect(ids.filter((id) => replayed.includes(id))).toEqual(replayed);
    expect([...ids].sort()).toEqual([...history, ...later].map((b) => b.id).sort());

    // listed already: a start_at replay is started again, and recorded with its start time like the first
    expect(await suite.operator.createSubscription(f.tenant, f.topic, 'restored', { startAt: since })).toMatchObject({ created: false });
    const { events } = await suite.auditor.events({ stream: 'entitlement', tenant: f.tenant, action: 'admin.subscription_added' });
    // newest first
    expect(events.map((e) => e.detail)).toEqual([
      expect.objectContaining({ subscription: 'restored', start_at: since.toISOString(), created: 'false' }),
      expect.objectContaining({ subscription: 'restored', start_at: since.toISOString(), created: 'true' }),
    ]);

    const future = await suite.operator.createSubscription(f.tenant, f.topic, 'too-early', { startAt: new Date(Date.now() + 3_600_000) }).catch((err: unknown) => err);
    expect(future).toMatchObject({ status: 400, code: 'invalid_request' });
    expect((await suite.operator.listSubscriptions(f.tenant, f.topic)).subscriptions.map((s) => s.name)).toEqual(['restored']);
  });

  it('a feed removed and granted again replays nothing from before: its stream went with the feed', async () => {
    const f = await feed();
    const since = new Date();
    await f.publish(3);
    await suite.operator.removeFeed(f.tenant, f.topic);
    await suite.operator.grantFeed(f.tenant, f.topic);
    // removing the feed revoked the keys issued until then (to the second): new ones for the new grant
    await sleep(1100);
    const { refresh_token } = await suite.pas.password(f.email, PASSWORD);
    const { sas_key: listenKey } = await suite.pac.sas({ refresh_token, rights: 'listen' });
    const started = await suite.topic.replay(listenKey, f.tenant, f.topic, 'default', { fromTime: since });
    let status = started;
    const deadline = Date.now() + 20_000;
    while (status.status === 'running' && Date.now() < deadline) {
      await sleep(200);
      status = await suite.topic.replayStatus(listenKey, f.tenant, f.topic, 'default', started.replay_id);
    }
    expect(status).toMatchObject({ status: 'completed', copied: 0 });
  });

  it('the importer’s REPLAY_FROM writes the history since then into the sink again, once: a restart with the same value does not replay, a new value does', async () => {
    const f = await feed();
    const dir = mkdtempSync(join(tmpdir(), 'keyway-replay-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'ca.crt'), suite.pki.ca.certPem);
    const sinkFile = join(dir, 'batches.jsonl');
    const env = (replayFrom?: string) =>
      importerFeeds({
        PAS_URL: suite.urls.pas,
        PAC_URL: suite.urls.pac,
        TOPIC_URL: suite.urls.topic,
        TLS_CA_FILE: join(dir, 'ca.crt'),
        KEYWAY_USERNAME: f.email,
        KEYWAY_PASSWORD: PASSWORD,
        SINK_FILE: sinkFile,
        STREAM_TIMEOUT_SEC: '5',
        LOG_LEVEL: 'silent',
        ...(replayFrom && { REPLAY_FROM: replayFrom }),
      });
    const ids = () => readLines(sinkFile).map((line) => (JSON.parse(line) as { id: string }).id);
    const run = async (replayFrom: string | undefined, expectedLines: number) => {
      const importer = await startImporter(env(replayFrom), silentLogger);
      try {
        await waitForLines(sinkFile, expectedLines, 30_000);
        // long enough for anything more (a second copy) to arrive
        await sleep(1500);
      } finally {
        await importer.stop();
      }
    };

    const old = await f.publish(2);
    const since = await pointInTime();
    const history = await f.publish(3);
    await run(undefined, 5);
    expect(ids()).toEqual([...old, ...history].map((b) => b.id));

    // the SIEM lost the last batches: the agent is started again with REPLAY_FROM
    await run(since.toISOString(), 8);
    expect(ids()).toEqual([...old, ...history, ...history].map((b) => b.id));
    const marker = JSON.parse(readFileSync(`${sinkFile}.checkpoint.replay`, 'utf8')) as { replay_from: string; replay_id: string };
    expect(marker).toMatchObject({ replay_from: since.toISOString(), replay_id: expect.any(String) });

    // restarted with the same value: no replay, only what is new
    const fresh = await f.publish(1);
    await run(since.toISOString(), 9);
    expect(ids()).toEqual([...old, ...history, ...history, ...fresh].map((b) => b.id));

    // a new value replays again
    await run(new Date(Date.parse(since.toISOString()) - 1).toISOString(), 13);
    expect(ids().slice(9)).toEqual([...history, ...fresh].map((b) => b.id));
  });
});
