import { metrics } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReceivedMessage } from '@keyway/contracts';
import { NoSubscriptionError } from '@keyway/broker';
import { queueDepthGauge } from './metrics.ts';
import { BROKERS, sleep, startTopic, type Harness } from './testing/harness.ts';

/**
 * The delivery figures, read as an OpenTelemetry SDK reads them: a MeterProvider registered globally
 * before the app is made (its instruments are made at creation), cumulative sums exported to memory
 * on demand, real HTTPS traffic through the real broker (RabbitMQ, and the embedded one).
 */
const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
const provider = new MeterProvider({ readers: [reader] });

/** the sum of the data points of `name` with exactly these attributes (0 when there is none) */
async function value(name: string, attributes: Record<string, string>): Promise<number | undefined> {
  await reader.forceFlush();
  const points = (exporter.getMetrics().at(-1)?.scopeMetrics ?? [])
    .flatMap((scope) => scope.metrics)
    .flatMap((m) => (m.descriptor.name === name && (m.dataPointType === DataPointType.SUM || m.dataPointType === DataPointType.GAUGE) ? m.dataPoints : []));
  const same = (a: Record<string, unknown>) => Object.keys(a).length === Object.keys(attributes).length && Object.entries(attributes).every(([k, v]) => a[k] === v);
  const matching = points.filter((p) => same(p.attributes));
  return matching.length === 0 ? undefined : matching.reduce((sum, p) => sum + p.value, 0);
}
const count = async (name: string, attributes: Record<string, string>) => (await value(name, attributes)) ?? 0;

/** polls until the metric reads `expected` (a lock's return to the queue is not awaited by anyone) */
async function eventually(name: string, attributes: Record<string, string>, expected: number): Promise<number | undefined> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const current = await value(name, attributes);
    if (current === expected || Date.now() > deadline) return current;
    await sleep(100);
  }
}

beforeAll(() => {
  // a provider another test file in this worker registered would otherwise win
  metrics.disable();
  expect(metrics.setGlobalMeterProvider(provider)).toBe(true);
});
afterAll(async () => {
  await provider.shutdown();
  metrics.disable();
});

describe.each(BROKERS)('delivery metrics (%s broker)', { timeout: 30_000 }, (kind) => {
  let h: Harness;
  beforeAll(async () => {
    // a lock lapses after 1 s; the second return of a delivery dead-letters it
    h = await startTopic(kind, { LOCK_DURATION_SEC: 1 }, { maxDeliveries: 2 });
  });
  afterAll(() => h?.close());

  it('publish 3, complete 2, let 1 lock expire: 3 published, 3 received, 2 completed, 1 lock expired, depth 1; then abandoned, dead-lettered, drained', async () => {
    const t = h.newTopic();
    const feed = { tenant: t.tenant, topic: t.topic };
    const queue = { ...feed, queue: 'subscription' };
    const listen = t.sas('listen');
    const receive = (timeoutSec: number) => h.client.receive(listen, t.tenant, t.topic, 'default', timeoutSec);

    const batches = [t.batch(), t.batch(), t.batch()];
    for (const batch of batches) await h.client.publish(t.sas('send'), batch);
    // a refused publish moves nothing
    await expect(h.client.publish(t.sas('listen'), t.batch())).rejects.toMatchObject({ status: 403, code: 'insufficient_scope' });
    expect(await eventually('keyway.topic.queue.depth', { ...feed, subscription: 'default' }, 3)).toBe(3);

    const received = [];
    for (let i = 0; i < 3; i++) {
      const message = await receive(5);
      if (!message) throw new Error('nothing received');
      received.push(message);
    }
    expect(received.map((m) => m.message_id).sort()).toEqual(batches.map((b) => b.id).sort());
    const [first, second, third] = received as [ReceivedMessage, ReceivedMessage, ReceivedMessage];
    await h.client.complete(listen, t.tenant, t.topic, 'default', first.message_id, first.lock_token);
    await h.client.complete(listen, t.tenant, t.topic, 'default', second.message_id, second.lock_token);
    await sleep(1500);

    expect(await count('keyway.topic.batches.published', feed)).toBe(3);
    expect(await count('keyway.topic.batches.received', queue)).toBe(3);
    expect(await count('keyway.topic.batches.completed', queue)).toBe(2);
    expect(await eventually('keyway.topic.locks.expired', queue, 1)).toBe(1);
    expect(await eventually('keyway.topic.queue.depth', { ...feed, subscription: 'default' }, 1)).toBe(1);
    // bytes as stored: every batch handed out once, so what went in came out
    const publishedBytes = await count('keyway.topic.published.bytes', feed);
    expect(publishedBytes).toBeGreaterThan(0);
    expect(await count('keyway.topic.received.bytes', queue)).toBe(publishedBytes);

    // the expired one again (its second delivery), abandoned: with MAX_DELIVERIES 2 that dead-letters it
    const again = await receive(5);
    expect(again).toMatchObject({ message_id: third.message_id, delivery_count: 2 });
    await h.client.abandon(listen, t.tenant, t.topic, 'default', again!.message_id, again!.lock_token);
    expect(await count('keyway.topic.batches.abandoned', queue)).toBe(1);
    expect(await count('keyway.topic.batches.dead_lettered', { ...feed, reason: 'max_deliveries' })).toBe(1);
    expect(await eventually('keyway.topic.queue.depth', { ...feed, subscription: 'default' }, 0)).toBe(0);

    // drained from the dead-letter queue: counted apart from the subscription's figures
    const dead = await h.client.deadLetter.receive(listen, t.tenant, t.topic, 'default', 5);
    expect(dead?.message_id).toBe(third.message_id);
    await h.client.deadLetter.complete(listen, t.tenant, t.topic, 'default', dead!.message_id, dead!.lock_token);
    expect(await count('keyway.topic.batches.received', { ...feed, queue: 'dead_letter' })).toBe(1);
    expect(await count('keyway.topic.batches.completed', { ...feed, queue: 'dead_letter' })).toBe(1);
    expect(await count('keyway.topic.batches.completed', queue)).toBe(2);

    // something that is no batch (put on the queue around publish) is dead-lettered as unreadable
    await h.broker.publish(t, Buffer.from('not a batch'), { messageId: 'not-a-batch', contentType: 'text/plain' });
    expect(await receive(1)).toBeNull();
    expect(await count('keyway.topic.batches.dead_lettered', { ...feed, reason: 'unreadable' })).toBe(1);
    expect(await count('keyway.topic.batches.received', queue)).toBe(4);

    // dead-lettered by its receiver: counted under `receiver`, whatever reason the receiver gave
    await h.client.publish(t.sas('send'), t.batch());
    const rejected = await receive(5);
    await h.client.deadLetterMessage(listen, t.tenant, t.topic, 'default', rejected!.message_id, rejected!.lock_token, { reason: 'SchemaMismatch' });
    expect(await count('keyway.topic.batches.dead_lettered', { ...feed, reason: 'receiver' })).toBe(1);
    expect(await count('keyway.topic.batches.received', queue)).toBe(5);
  });

  it('a stream counts what it hands out; a stream that closes with locks held gives them back (abandoned)', async () => {
    const t = h.newTopic();
    const feed = { tenant: t.tenant, topic: t.topic };
    const queue = { ...feed, queue: 'subscription' };
    for (let i = 0; i < 2; i++) await h.client.publish(t.sas('send'), t.batch());
    const stop = new AbortController();
    const seen: string[] = [];
    const stream = h.client.stream(t.sas('listen'), t.tenant, t.topic, 'default', { prefetch: 2, timeoutSec: 10, signal: stop.signal });
    try {
      for await (const message of stream) {
        seen.push(message.message_id);
        if (seen.length === 2) break;
      }
    } finally {
      stop.abort();
    }
    expect(seen).toHaveLength(2);
    expect(await count('keyway.topic.batches.received', queue)).toBe(2);
    expect(await eventually('keyway.topic.batches.abandoned', queue, 2)).toBe(2);
    expect(await count('keyway.topic.locks.expired', queue)).toBe(0);
  });
});

describe('the queue depth gauge', () => {
  it('asks the broker at most once per poll interval (concurrent collections share a poll); a queue that is gone reads 0, one that fails is not observed', async () => {
    const own = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const ownReader = new PeriodicExportingMetricReader({ exporter: own, exportIntervalMillis: 3_600_000 });
    const ownProvider = new MeterProvider({ readers: [ownReader] });
    const asked: string[] = [];
    const depths = new Map([['a', 5]]);
    const broker = {
      depth: async (_topic: unknown, subscription: string) => {
        asked.push(subscription);
        await sleep(50);
        if (subscription === 'failing') throw new Error('channel closed');
        const depth = depths.get(subscription);
        if (depth === undefined) throw new NoSubscriptionError(subscription);
        return depth;
      },
    };
    const topic = { tenant: 't-1', topic: 'f-1' };
    const gauge = queueDepthGauge(
      broker,
      () => [
        { topic, subscription: 'a' },
        { topic, subscription: 'gone' },
        { topic, subscription: 'failing' },
      ],
      { pollMs: 300, meter: ownProvider.getMeter('test') },
    );
    const read = async () => {
      await ownReader.forceFlush();
      const points = (own.getMetrics().at(-1)?.scopeMetrics ?? [])
        .flatMap((scope) => scope.metrics)
        .flatMap((m) => (m.descriptor.name === 'keyway.topic.queue.depth' && m.dataPointType === DataPointType.GAUGE ? m.dataPoints : []));
      return points.map((p) => [p.attributes.subscription, p.value]).sort();
    };
    try {
      await Promise.all([read(), read()]);
      expect(asked.sort()).toEqual(['a', 'failing', 'gone']);
      depths.set('a', 7);
      // within the interval: the last answer, without asking
      expect(await read()).toEqual([
        ['a', 5],
        ['gone', 0],
      ]);
      expect(asked).toHaveLength(3);
      await sleep(350);
      expect(await read()).toEqual([
        ['a', 7],
        ['gone', 0],
      ]);
      expect(asked).toHaveLength(6);
      // a queue deleted meanwhile reads 0, not its last depth
      depths.delete('a');
      await sleep(350);
      expect(await read()).toEqual([
        ['a', 0],
        ['gone', 0],
      ]);
    } finally {
      gauge.close();
      await ownProvider.shutdown();
    }
  });
});
