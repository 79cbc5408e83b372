import { tcpProxy, viaProxy } from '@keyway/testkit/tcp-proxy';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createMemoryStore, createRedisStore, createStore, StoreUnavailableError } from './index.ts';
import { storeContract } from './store.contract.ts';

const REDIS_URL = process.env.KEYWAY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let clock = 1_700_000_000_000;
storeContract('memory', {
  create: async (prefix) => createMemoryStore({ prefix, now: () => clock }),
  elapse: async (ms) => {
    clock += ms;
  },
});

storeContract('redis', {
  create: (prefix) => createRedisStore({ url: REDIS_URL, prefix }),
  elapse: (ms) => sleep(ms),
});

describe('redis store availability', () => {
  it('rejects creation quickly with StoreUnavailableError when nothing listens', async () => {
    const started = Date.now();
    const attempt = createRedisStore({ url: 'redis://127.0.0.1:6390', prefix: `test:${randomUUID()}:` });
    await expect(attempt).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('fails calls with StoreUnavailableError once closed', async () => {
    const store = await createRedisStore({ url: REDIS_URL, prefix: `test:${randomUUID()}:` });
    await store.close();
    await expect(store.get('a')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

/** A proxy in front of Redis that the test can cut and restore, to simulate an outage. */
async function redisProxy() {
  const target = new URL(REDIS_URL);
  const proxy = await tcpProxy(target.hostname, Number(target.port || 6379));
  return { ...proxy, url: viaProxy(REDIS_URL, proxy) };
}

describe('redis store outage', () => {
  it('fails fast with StoreUnavailableError during an outage and recovers by itself', async () => {
    const proxy = await redisProxy();
    const errors: Error[] = [];
    const store = await createRedisStore({ url: proxy.url, prefix: `test:${randomUUID()}:`, onError: (e) => errors.push(e) });
    try {
      await store.set('a', '1', { ttlMs: 10_000 });
      await proxy.cut();
      await sleep(50);
      const started = Date.now();
      await expect(store.get('a')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(500);

      await proxy.restore();
      const deadline = Date.now() + 5000;
      for (;;) {
        try {
          await store.ping();
          break;
        } catch (err) {
          expect(err).toBeInstanceOf(StoreUnavailableError);
          if (Date.now() > deadline) throw err;
          await sleep(100);
        }
      }
      expect(await store.get('a')).toBe('1');
      await store.del('a');
    } finally {
      await store.close();
      await proxy.cut();
    }
  });
});

describe('createStore', () => {
  it('uses memory without a Redis URL and Redis with one', async () => {
    const memory = await createStore({ prefix: 'p:' });
    await memory.set('a', '1');
    expect(await memory.get('a')).toBe('1');
    await memory.close();
    await expect(memory.get('a')).rejects.toBeInstanceOf(StoreUnavailableError);

    const prefix = `test:${randomUUID()}:`;
    const redis = await createStore({ redisUrl: REDIS_URL, prefix });
    await redis.set('a', '1', { ttlMs: 5000 });
    const raw = await createRedisStore({ url: REDIS_URL, prefix: '' });
    expect(await raw.get(`${prefix}a`)).toBe('1');
    await raw.del(`${prefix}a`);
    await raw.close();
    await redis.close();
  });
});
