import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryStore, createRedisStore, type Store } from '@keyway/store';
import { TemporarilyUnavailable } from './errors.ts';
import { boundedConcurrency, windowLimiter } from './rate-limit.ts';

const REDIS_URL = process.env.KEYWAY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const opened: Store[] = [];
afterAll(async () => {
  for (const store of opened) {
    const keys = await store.keys('');
    if (keys.length > 0) await store.del(...keys);
    await store.close();
  }
});

// One behaviour for both stores (style rule 13): the limiter only uses INCR-with-TTL, GET, SET NX, DEL.
for (const [name, create] of [
  ['memory', async () => createMemoryStore({ prefix: `test:${randomUUID()}:` })],
  ['redis', async () => createRedisStore({ url: REDIS_URL, prefix: `test:${randomUUID()}:` })],
] as const) {
  describe(`windowLimiter on the ${name} store`, () => {
    it('admits `points` hits per window, refuses the rest until the window ends with a Retry-After, and flags one first refusal', async () => {
      const store = await create();
      opened.push(store);
      const limiter = windowLimiter(store, { name: 'login', points: 3, windowMs: 1500 });
      const states = [];
      for (let i = 0; i < 6; i++) states.push(await limiter.hit('alice|10.0.0.1'));
      expect(states.map((s) => s.allowed)).toEqual([true, true, true, false, false, false]);
      expect(states.filter((s) => s.firstRefusal)).toHaveLength(1);
      expect(states[3]).toMatchObject({ allowed: false, count: 4, firstRefusal: true, retryAfterSec: 2 });
      // other keys are not affected; check() counts nothing
      expect(await limiter.check('alice|10.0.0.2')).toMatchObject({ allowed: true, count: 0 });
      expect((await limiter.check('alice|10.0.0.1')).allowed).toBe(false);
      await sleep(1600);
      expect(await limiter.hit('alice|10.0.0.1')).toMatchObject({ allowed: true, count: 1 });
    });

    it('reset forgets a key’s window', async () => {
      const store = await create();
      opened.push(store);
      const limiter = windowLimiter(store, { name: 'login', points: 1, windowMs: 60_000 });
      await limiter.hit('k');
      expect((await limiter.check('k')).allowed).toBe(false);
      await limiter.reset('k');
      expect((await limiter.check('k')).allowed).toBe(true);
    });
  });
}

describe('boundedConcurrency', () => {
  it('runs at most `concurrency`, queues at most `queue`, and refuses the rest at once', async () => {
    const gate = boundedConcurrency({ concurrency: 2, queue: 3, maxWaitMs: 5000, onFull: () => new TemporarilyUnavailable() });
    let peak = 0;
    const task = async () => {
      peak = Math.max(peak, gate.running);
      await sleep(50);
    };
    const started = Date.now();
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => gate.run(task)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused).toHaveLength(5);
    for (const r of refused) expect(r.reason).toBeInstanceOf(TemporarilyUnavailable);
    expect(peak).toBe(2);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('refuses a task that waited longer than maxWaitMs', async () => {
    const gate = boundedConcurrency({ concurrency: 1, queue: 5, maxWaitMs: 50, onFull: () => new TemporarilyUnavailable() });
    const slow = gate.run(() => sleep(300));
    await expect(gate.run(async () => 'late')).rejects.toBeInstanceOf(TemporarilyUnavailable);
    await slow;
    expect(await gate.run(async () => 'now')).toBe('now');
  });
});
