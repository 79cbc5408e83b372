import { setTimeout as sleep } from 'node:timers/promises';
import { metrics } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Batch } from '@keyway/contracts';
import { createAgent, type Sink } from '@keyway/importer';
import { silentLogger } from '@keyway/kit';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant } from '../helpers.ts';
import { memoryReader } from './reader.ts';

/**
 * The importer's figures on the real chain (PostgreSQL, Redis, RabbitMQ, every service over HTTPS):
 * a MeterProvider registered before the suite and the agent are made, the agent pulling into a sink
 * that keeps batches in memory and fails once on demand. The topic service's counters move in the
 * same run, so one flow is read from both ends.
 */
const reader = memoryReader();
let suite: Suite;
beforeAll(async () => {
  metrics.disable();
  expect(metrics.setGlobalMeterProvider(reader.provider)).toBe(true);
  // the topic's own duplicate detection off (issue 16): a producer's retry reaches the importer, which drops it by id
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, topic: { duplicateWindowSec: 0 } });
});
afterAll(async () => {
  await suite?.close();
  await reader.provider.shutdown();
  metrics.disable();
});

/** polls until `done` holds; fails the test when it does not within timeoutMs */
async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

describe('importer metrics', () => {
  it('counts batches and records written, write errors, duplicates dropped, credentials, lag and write time; the topic service counts the same flow', async () => {
    const { tenant, feed: topic, email } = await provisionTenant(suite);
    const producer = await suite.operator.createUser(tenant, { email: `producer@${tenant}.example`, password: PASSWORD, roles: ['producer'] });
    const { refresh_token } = await suite.pas.password(producer.email, PASSWORD);
    const { sas_key: sendKey } = await suite.pac.sas({ refresh_token, rights: 'send' });

    const written: Batch[] = [];
    let failNext = true;
    const sink: Sink = {
      description: 'memory',
      async write(batch) {
        // the first write fails: that batch (and any queued behind it) is abandoned and comes back
        if (failNext) {
          failNext = false;
          throw new Error('disk full');
        }
        written.push(batch);
      },
      close: async () => undefined,
    };
    const agent = createAgent(
      { credentials: { kind: 'password', username: email, password: PASSWORD }, subscription: 'default', receiveTimeoutSec: 1 },
      { pas: suite.pas, pac: suite.pac, topic: suite.topic, sink, logger: silentLogger },
    );
    const feedAttributes = { tenant, topic, subscription: 'default' };
    try {
      agent.start();
      // three batches of 2, 3 and 4 records, and the first one again (a producer's retry): a duplicate
      const batches = [2, 3, 4].map((n, seq) =>
        makeBatch(
          tenant,
          topic,
          seq,
          Array.from({ length: n }, (_, i) => ({ event: 'login', i })),
        ),
      );
      for (const batch of batches) await suite.topic.publish(sendKey, batch);
      await waitFor(() => written.length === 3, 20_000);
      await suite.topic.publish(sendKey, batches[0]!);
      await waitFor(() => agent.stats.duplicatesDropped === 1, 20_000);
      await waitFor(() => agent.health().behind === 0, 10_000);

      expect(await reader.sum('keyway.importer.batches.written', feedAttributes)).toBe(3);
      expect(await reader.sum('keyway.importer.records.written', feedAttributes)).toBe(9);
      expect(await reader.sum('keyway.importer.write.errors', feedAttributes)).toBe(1);
      expect(await reader.sum('keyway.importer.duplicates.dropped', feedAttributes)).toBe(1);
      expect(await reader.sum('keyway.importer.credentials.renewed', { credential: 'login', outcome: 'success' })).toBe(1);
      expect(await reader.sum('keyway.importer.credentials.renewed', { credential: 'sas_key', outcome: 'success' })).toBe(1);
      expect(await reader.sum('keyway.importer.credentials.renewed', { credential: 'login', outcome: 'failure' })).toBe(0);
      // one lag and one write time per batch written; lags are bounded by the test's own length
      const lag = await reader.histogram('keyway.importer.lag', feedAttributes);
      expect(lag).toMatchObject({ count: 3 });
      expect(lag!.max).toBeLessThan(60);
      expect(lag!.min).toBeGreaterThanOrEqual(0);
      expect(await reader.histogram('keyway.importer.sink.write.duration', feedAttributes)).toMatchObject({ count: 3 });
      expect(await reader.gauge('keyway.importer.batches.pending', feedAttributes)).toBe(0);

      // the topic service saw the same flow: 4 published, the failed one handed out again, all completed
      const feed = { tenant, topic };
      const queue = { tenant, topic, queue: 'subscription' };
      expect(await reader.sum('keyway.topic.batches.published', feed)).toBe(4);
      expect(await reader.sum('keyway.topic.batches.completed', queue)).toBe(4);
      expect(await reader.sum('keyway.topic.batches.received', queue)).toBeGreaterThanOrEqual(5);
      expect(await reader.sum('keyway.topic.batches.abandoned', queue)).toBeGreaterThanOrEqual(1);
      expect(await reader.sum('keyway.topic.batches.dead_lettered', { ...feed, reason: 'max_deliveries' })).toBe(0);
    } finally {
      await agent.stop();
    }
  }, 60_000);
});
