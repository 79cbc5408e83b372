import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryBroker } from '@keyway/broker';
import { silentLogger } from '@keyway/kit';
import { createMemoryStore } from '@keyway/store';
import { replayJobs } from './replays.ts';

const policy = { retentionSec: 3600, retentionBytes: 10_000_000, messageTtlSec: 3600, duplicateWindowSec: 60 };

describe('replay jobs: the limit per subscription', () => {
  const broker = createMemoryBroker();
  const store = createMemoryStore({ prefix: `replays-test-${randomUUID()}:` });
  // two instances sharing the store
  const instances = [0, 1].map(() => replayJobs({ broker, store, policies: { of: async () => policy }, logger: silentLogger, now: Date.now }));
  afterAll(async () => {
    for (const jobs of instances) await jobs.close();
    await broker.close();
    await store.close();
  });

  it('replays asked at the same moment on two instances: at most 3 start, the others are 429', async () => {
    const topic = { tenant: `t-${randomUUID().slice(0, 8)}`, topic: 'edr-events' };
    await broker.declareSubscription(topic, 'default', { maxAgeSec: 3600, maxBytes: 10_000_000 });
    // a backlog long enough that every copy is still running when the last is asked for
    for (let i = 0; i < 20_000; i++) await broker.publish(topic, Buffer.from('{}'), { messageId: `m-${i}`, contentType: 'application/json' });
    const asked = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => instances[i % 2]!.start(topic, 'default', { from_offset: 0 })));
    expect(asked.filter((r) => r.status === 'fulfilled').length).toBeLessThanOrEqual(3);
    for (const r of asked) if (r.status === 'rejected') expect(r.reason).toMatchObject({ status: 429 });
  });
});
