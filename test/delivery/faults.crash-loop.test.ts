import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '@keyway/clients';
import type { ReceivedMessage } from '@keyway/contracts';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { tcpProxy, viaProxy, type TcpProxy } from '@keyway/testkit/tcp-proxy';
import { compare, deliveryRig, report, timeline, holdsEveryAccepted, type Rig } from './delivery-rig.ts';

/**
 * Issue 12: a crash must not spend deliveries. The topic service prefetches up to BROKER_PREFETCH
 * batches per subscription; when it dies or loses its RabbitMQ connection, RabbitMQ returns them all.
 * Quorum queues counted every return, and after ten a batch nobody had seen was dead-lettered: 11
 * restarts with a backlog sent 67 accepted batches to the dead-letter queue, 11 dropped connections 85.
 * Here a backlog is prefetched and returned 11 times each way, with the production prefetch and
 * MAX_DELIVERIES, and every batch must still reach the importer's sink, none the dead letters.
 */

const BACKLOG = 300;
const ROUNDS = 11;

let proxy: TcpProxy;
let suite: Suite;
beforeAll(async () => {
  const target = new URL(AMQP_URL);
  proxy = await tcpProxy(target.hostname, Number(target.port || 5672));
  // Only the topic service reaches RabbitMQ through the proxy, so a cut drops its connection alone.
  suite = await startSuite({
    redisUrl: REDIS_URL,
    amqpUrl: AMQP_URL,
    links: { topic: { amqpUrl: viaProxy(AMQP_URL, proxy) } },
    topic: { lockDurationSec: 2, brokerPrefetch: 500 },
  });
});
afterAll(async () => {
  await suite?.close();
  await proxy?.cut();
});

/** publishes until BACKLOG batches are accepted, nobody receiving yet */
async function backlog(rig: Rig) {
  const producer = rig.produce({ workers: 4, pauseMs: 0 });
  try {
    const deadline = Date.now() + 30_000;
    while (producer.published.length < BACKLOG && Date.now() < deadline) await sleep(50);
  } finally {
    await producer.stop();
  }
  expect(producer.published.length).toBeGreaterThanOrEqual(BACKLOG);
  return producer;
}

/**
 * One receive by a client, retried while the topic service is down or reconnecting: it starts the
 * subscription's consumer, and RabbitMQ pushes the whole backlog to the instance. Held, never settled.
 */
async function receiveOne(rig: Rig): Promise<ReceivedMessage> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const message = await suite.topic.receive(rig.listenKey, rig.tenant, rig.topic, 'default', 5);
      if (message) return message;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 503)) throw err;
    }
    if (Date.now() > deadline) throw new Error('no batch received within 15 s: the backlog is gone (dead-lettered?)');
    await sleep(100);
  }
}

/** waits until the instance holds the backlog: nothing of it is ready in the queue any more */
async function prefetched(rig: Rig): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await suite.broker.depth({ tenant: rig.tenant, topic: rig.topic }, 'default')) > 0) {
    if (Date.now() > deadline) throw new Error('the topic service never took the backlog');
    await sleep(50);
  }
}

/** receives (and completes) until every batch in `ids` was seen; their delivery counts by message id */
async function receiveAll(rig: Rig, ids: string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const deadline = Date.now() + 30_000;
  while (ids.some((id) => counts[id] === undefined)) {
    if (Date.now() > deadline) throw new Error(`not received again within 30 s: ${ids.filter((id) => counts[id] === undefined).join(', ')}`);
    let message: ReceivedMessage | null = null;
    try {
      message = await suite.topic.receive(rig.listenKey, rig.tenant, rig.topic, 'default', 2);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 503)) throw err;
      await sleep(100);
      continue;
    }
    if (!message) continue;
    if (ids.includes(message.message_id)) counts[message.message_id] = message.delivery_count;
    await suite.topic.complete(rig.listenKey, rig.tenant, rig.topic, 'default', message.message_id, message.lock_token);
  }
  return counts;
}

async function drainAndCheck(name: string, stage: (what: string) => void, rig: Rig, producer: Awaited<ReturnType<typeof backlog>>, counts: number[]): Promise<void> {
  rig.agent.start();
  try {
    const complete = await rig.waitForSink(holdsEveryAccepted(producer), 45_000);
    stage(`every accepted batch in the sink: ${complete}`);
    await rig.stopAgent();
    const dead = await suite.topic.deadLetter.receive(rig.listenKey, rig.tenant, rig.topic, 'default', 1);
    const verdict = compare(producer, rig.sinkIds());
    report(name, { summary: verdict.summary, heldDeliveryCounts: counts.join(','), deadLetter: dead?.message_id ?? 'none', agentErrors: rig.agent.stats.errors });

    expect(complete, `${verdict.summary}; agent: ${rig.agentLog.join(' | ')}`).toBe(true);
    expect(verdict.missing, verdict.summary).toEqual([]);
    expect(dead, 'a batch was dead-lettered').toBeNull();
    // the batch a client held in each round came back uncounted: the instance went away, not the client
    expect(counts).toEqual(Array.from({ length: ROUNDS }, () => 1));
    expect(rig.outcomes.internalErrors(), rig.outcomes.toString()).toBe(0);
  } finally {
    await rig.stopAgent();
  }
}

describe('a crash loop against a backlog spends no deliveries (issue 12)', () => {
  it(`${ROUNDS} topic-service restarts with ${BACKLOG} batches prefetched: none dead-lettered, every one reaches the sink`, async () => {
    const stage = timeline('crash-loop-restart');
    const rig = await deliveryRig(suite);
    const producer = await backlog(rig);
    stage(`backlog of ${producer.published.length} accepted`);
    const counts: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      counts.push((await receiveOne(rig)).delivery_count);
      await prefetched(rig);
      await suite.restartTopic({ downMs: 100 });
    }
    stage(`${ROUNDS} restarts done`);
    await drainAndCheck('crash-loop-restart', stage, rig, producer, counts);
  }, 90_000);

  it('batches held on a stream its client closes come back counted, as abandoned', async () => {
    const rig = await deliveryRig(suite);
    const producer = rig.produce({ workers: 2, pauseMs: 0 });
    try {
      const deadline = Date.now() + 15_000;
      while (producer.published.length < 20 && Date.now() < deadline) await sleep(50);
    } finally {
      await producer.stop();
    }
    const stream = new AbortController();
    const held: string[] = [];
    try {
      for await (const message of suite.topic.stream(rig.listenKey, rig.tenant, rig.topic, 'default', { prefetch: 10, timeoutSec: 30, signal: stream.signal })) {
        expect(message.delivery_count).toBe(1);
        held.push(message.message_id);
        if (held.length === 10) break;
      }
    } finally {
      stream.abort();
    }
    // the stream's client is gone, so its locks were released: the client's doing, counted
    const counted = await receiveAll(rig, held);
    expect(held.map((id) => counted[id])).toEqual(held.map(() => 2));
  }, 90_000);

  it(`${ROUNDS} dropped broker connections with ${BACKLOG} batches prefetched: none dead-lettered, every one reaches the sink`, async () => {
    const stage = timeline('crash-loop-drop');
    const rig = await deliveryRig(suite);
    const producer = await backlog(rig);
    stage(`backlog of ${producer.published.length} accepted`);
    const counts: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      counts.push((await receiveOne(rig)).delivery_count);
      await prefetched(rig);
      // RabbitMQ sees the connection die and returns everything it had pushed to the instance
      await proxy.cut();
      await proxy.restore();
    }
    stage(`${ROUNDS} connection drops done`);
    await drainAndCheck('crash-loop-drop', stage, rig, producer, counts);
  }, 90_000);
});
