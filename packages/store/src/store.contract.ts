import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RecordStore } from './postgres.ts';
import type { Store, StoreWrite } from './store.ts';

export interface StoreHarness {
  /** a fresh root store under `prefix` */
  create(prefix: string): Promise<Store>;
  /** let `ms` of store time pass (real sleep for Redis, a fake clock for memory) */
  elapse(ms: number): Promise<void>;
  /**
   * the TTL the suite gives short-lived keys (default 50 ms): it must outlast the few calls a test makes
   * before checking the key is still there, which on a durable SQL store include commits (fsync)
   */
  shortTtlMs?: number;
}

/** One behaviour suite for every Store implementation, so both backends keep identical semantics. */
export function storeContract(name: string, harness: StoreHarness): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    const short = harness.shortTtlMs ?? 50;
    // well past the TTL, so an expiry is never a race
    const past = short * 2.4;

    beforeEach(async () => {
      store = await harness.create(`test:${randomUUID()}:`);
    });

    afterEach(async () => {
      // the root view sees the keys of every scoped view, so this removes everything the test wrote
      const leftovers = await store.keys('');
      await store.del(...leftovers);
      await store.close();
    });

    it('get/set round-trips and get of an absent key is null', async () => {
      expect(await store.get('a')).toBeNull();
      expect(await store.set('a', 'one')).toBe(true);
      expect(await store.get('a')).toBe('one');
      expect(await store.set('a', 'two')).toBe(true);
      expect(await store.get('a')).toBe('two');
    });

    it('set ifAbsent only writes when the key does not exist', async () => {
      expect(await store.set('a', 'one', { ifAbsent: true })).toBe(true);
      expect(await store.set('a', 'two', { ifAbsent: true })).toBe(false);
      expect(await store.get('a')).toBe('one');
    });

    it('expires keys after their TTL and reports ttl', async () => {
      expect(await store.ttl('a')).toBe(-2);
      await store.set('plain', 'v');
      expect(await store.ttl('plain')).toBe(-1);
      await store.set('a', 'v', { ttlMs: short });
      const remaining = await store.ttl('a');
      expect(remaining).toBeGreaterThan(0);
      expect(remaining).toBeLessThanOrEqual(short);
      await harness.elapse(past);
      expect(await store.get('a')).toBeNull();
      expect(await store.ttl('a')).toBe(-2);
      expect(await store.set('a', 'again', { ifAbsent: true })).toBe(true);
    });

    it('a plain set clears an earlier TTL', async () => {
      await store.set('a', 'v', { ttlMs: short });
      await store.set('a', 'w');
      expect(await store.ttl('a')).toBe(-1);
      await harness.elapse(past);
      expect(await store.get('a')).toBe('w');
    });

    it('del removes keys and counts only the existing ones', async () => {
      await store.set('a', '1');
      await store.set('b', '2');
      expect(await store.del('a', 'b', 'missing')).toBe(2);
      expect(await store.get('a')).toBeNull();
      expect(await store.del()).toBe(0);
    });

    it('compareAndSet on an absent key', async () => {
      expect(await store.compareAndSet('a', 'x', 'y')).toBe(false);
      expect(await store.get('a')).toBeNull();
      expect(await store.compareAndSet('a', null, 'first')).toBe(true);
      expect(await store.get('a')).toBe('first');
      expect(await store.compareAndSet('a', null, 'again')).toBe(false);
    });

    it('compareAndSet on match and mismatch, with a TTL', async () => {
      await store.set('a', 'v1');
      expect(await store.compareAndSet('a', 'other', 'v2')).toBe(false);
      expect(await store.get('a')).toBe('v1');
      expect(await store.compareAndSet('a', 'v1', 'v2', { ttlMs: short })).toBe(true);
      expect(await store.get('a')).toBe('v2');
      expect(await store.ttl('a')).toBeGreaterThan(0);
      await harness.elapse(past);
      expect(await store.get('a')).toBeNull();
    });

    it('exactly one of 20 concurrent compareAndSet calls wins', async () => {
      await store.set('lock', 'v0');
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.compareAndSet('lock', 'v0', `v${i + 1}`)));
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = results.indexOf(true);
      expect(await store.get('lock')).toBe(`v${winner + 1}`);
    });

    it('take returns the value once and deletes it', async () => {
      await store.set('a', 'v');
      expect(await store.take('a')).toBe('v');
      expect(await store.take('a')).toBeNull();
      expect(await store.get('a')).toBeNull();
    });

    it('incr counts, sets the TTL only on creation, and restarts after expiry', async () => {
      expect(await store.incr('n', { ttlMs: short })).toBe(1);
      const firstTtl = await store.ttl('n');
      expect(firstTtl).toBeGreaterThan(0);
      expect(await store.incr('n', { ttlMs: 10_000 })).toBe(2);
      // the second call must not extend the window
      expect(await store.ttl('n')).toBeLessThanOrEqual(short);
      await harness.elapse(past);
      expect(await store.incr('n', { ttlMs: short })).toBe(1);
      expect(await store.incr('plain')).toBe(1);
      expect(await store.ttl('plain')).toBe(-1);
    });

    it('incr by a step counts it at once, sets the TTL on creation, and refuses a step that is not a positive integer', async () => {
      expect(await store.incr('chunk', { ttlMs: 10_000, by: 8 })).toBe(8);
      expect(await store.ttl('chunk')).toBeGreaterThan(0);
      expect(await store.incr('chunk', { by: 3 })).toBe(11);
      expect(await store.incr('chunk')).toBe(12);
      for (const by of [0, -1, 1.5, Number.NaN]) await expect(store.incr('chunk', { by })).rejects.toThrow(RangeError);
      expect(await store.incr('chunk', { by: 1 })).toBe(13);
    });

    it('hashes', async () => {
      expect(await store.hgetall('h')).toEqual({});
      expect(await store.hget('h', 'f')).toBeNull();
      await store.hset('h', { a: '1', b: '2' });
      await store.hset('h', { b: '3' });
      expect(await store.hget('h', 'b')).toBe('3');
      expect(await store.hgetall('h')).toEqual({ a: '1', b: '3' });
      expect(await store.hdel('h', 'a', 'missing')).toBe(1);
      expect(await store.hgetall('h')).toEqual({ b: '3' });
      expect(await store.hdel('h', 'b')).toBe(1);
      // an emptied hash no longer exists
      expect(await store.ttl('h')).toBe(-2);
    });

    it('sets', async () => {
      expect(await store.smembers('s')).toEqual([]);
      expect(await store.sadd('s', 'a', 'b', 'a')).toBe(2);
      expect(await store.sadd('s', 'b', 'c')).toBe(1);
      expect((await store.smembers('s')).sort()).toEqual(['a', 'b', 'c']);
      expect(await store.sismember('s', 'a')).toBe(true);
      expect(await store.sismember('s', 'z')).toBe(false);
      expect(await store.srem('s', 'a', 'z')).toBe(1);
      expect((await store.smembers('s')).sort()).toEqual(['b', 'c']);
    });

    it('lex sets: add, remove, byte order, and an emptied set no longer exists', async () => {
      expect(await store.zrangeByLex('z')).toEqual([]);
      expect(await store.zadd('z', 'b', 'a', '10', '9', 'B', 'a')).toBe(5);
      expect(await store.zadd('z', 'a', 'c')).toBe(1);
      // byte order: digits < upper case < lower case, and '10' < '9'
      expect(await store.zrangeByLex('z')).toEqual(['10', '9', 'B', 'a', 'b', 'c']);
      expect(await store.zrem('z', 'a', 'missing')).toBe(1);
      expect(await store.zrem('z', '10', '9', 'B', 'b', 'c')).toBe(5);
      expect(await store.ttl('z')).toBe(-2);
      expect(await store.zadd('z')).toBe(0);
      expect(await store.zrem('z')).toBe(0);
    });

    it('zrangeByLex honours inclusive and exclusive bounds, reverse and limit', async () => {
      await store.zadd('z', 'a1', 'a2', 'a3', 'b1', 'b2', 'c1');
      expect(await store.zrangeByLex('z', { min: { value: 'a2', inclusive: true }, max: { value: 'b2', inclusive: false } })).toEqual(['a2', 'a3', 'b1']);
      expect(await store.zrangeByLex('z', { min: { value: 'a2', inclusive: false }, max: { value: 'b2', inclusive: true } })).toEqual(['a3', 'b1', 'b2']);
      // a prefix works as a bound: every member that starts with "b" sorts at or after "b"
      expect(await store.zrangeByLex('z', { min: { value: 'b', inclusive: true } })).toEqual(['b1', 'b2', 'c1']);
      expect(await store.zrangeByLex('z', { max: { value: 'b', inclusive: false }, reverse: true })).toEqual(['a3', 'a2', 'a1']);
      expect(await store.zrangeByLex('z', { reverse: true, limit: 2 })).toEqual(['c1', 'b2']);
      expect(await store.zrangeByLex('z', { min: { value: 'a1', inclusive: false }, limit: 2 })).toEqual(['a2', 'a3']);
      expect(await store.zrangeByLex('z', { limit: 0 })).toEqual([]);
      expect(await store.zrangeByLex('z', { min: { value: 'x', inclusive: true } })).toEqual([]);
    });

    it('lex sets and strings refuse each other', async () => {
      await store.set('s', 'v');
      await expect(store.zadd('s', 'm')).rejects.toThrow(/WRONGTYPE/);
      await store.zadd('z', 'm');
      await expect(store.get('z')).rejects.toThrow(/WRONGTYPE/);
    });

    it('commitIf applies every write when the guard matches, nothing when it does not', async () => {
      await store.set('old', 'x');
      await store.zadd('idx', 'gone');
      const writes: StoreWrite[] = [
        { op: 'set', key: 'a', value: 'one' },
        { op: 'set', key: 'short', value: 'v', ttlMs: short },
        { op: 'del', key: 'old' },
        { op: 'zadd', key: 'idx', members: ['m1', 'm2'] },
        { op: 'zrem', key: 'idx', members: ['gone'] },
        { op: 'set', key: 'guard', value: 'g1' },
      ];

      expect(await store.commitIf({ key: 'guard', expected: 'g0' }, writes)).toBe(false);
      expect(await store.get('a')).toBeNull();
      expect(await store.get('old')).toBe('x');
      expect(await store.zrangeByLex('idx')).toEqual(['gone']);

      expect(await store.commitIf({ key: 'guard', expected: null }, writes)).toBe(true);
      expect(await store.get('a')).toBe('one');
      expect(await store.get('old')).toBeNull();
      expect(await store.zrangeByLex('idx')).toEqual(['m1', 'm2']);
      expect(await store.get('guard')).toBe('g1');
      expect(await store.ttl('short')).toBeGreaterThan(0);
      expect(await store.ttl('a')).toBe(-1);

      expect(await store.commitIf({ key: 'guard', expected: null }, [{ op: 'set', key: 'a', value: 'two' }])).toBe(false);
      expect(await store.commitIf({ key: 'guard', expected: 'g1' }, [{ op: 'set', key: 'a', value: 'two' }])).toBe(true);
      expect(await store.get('a')).toBe('two');
      await harness.elapse(past);
      expect(await store.get('short')).toBeNull();
    });

    it('commitIf writes nothing when a later write has the wrong type', async () => {
      await store.set('str', 'v');
      const attempt = store.commitIf({ key: 'guard', expected: null }, [
        { op: 'set', key: 'a', value: 'one' },
        { op: 'zadd', key: 'str', members: ['m'] },
      ]);
      await expect(attempt).rejects.toThrow(/WRONGTYPE/);
      expect(await store.get('a')).toBeNull();
      expect(await store.get('guard')).toBeNull();
    });

    it('commitIf passes values byte for byte, including separators and unicode', async () => {
      const odd = 'set\n0\u0000 "quoted" [x] ünïcode 🔑';
      expect(
        await store.commitIf({ key: 'g', expected: null }, [
          { op: 'set', key: odd, value: odd },
          { op: 'zadd', key: 'z', members: [odd, ''] },
        ]),
      ).toBe(true);
      expect(await store.get(odd)).toBe(odd);
      expect(await store.zrangeByLex('z')).toEqual(['', odd]);
    });

    it('exactly one of 20 concurrent commitIf calls with the same guard wins', async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.commitIf({ key: 'head', expected: null }, [
            { op: 'set', key: 'head', value: `v${i}` },
            { op: 'zadd', key: 'log', members: [`m${i}`] },
          ]),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = results.indexOf(true);
      expect(await store.get('head')).toBe(`v${winner}`);
      expect(await store.zrangeByLex('log')).toEqual([`m${winner}`]);
    });

    it('keys(prefix) lists keys without the store prefix, isolated between scopes', async () => {
      const a = store.scoped('a');
      const ab = store.scoped('ab');
      expect(a.prefix).toBe(`${store.prefix}a:`);
      await a.set('user:1', 'x');
      await a.set('user:2', 'x');
      await a.hset('user:3', { f: 'v' });
      await a.set('other', 'x');
      await ab.set('user:9', 'x');
      expect((await a.keys('user:')).sort()).toEqual(['user:1', 'user:2', 'user:3']);
      expect(await ab.keys('')).toEqual(['user:9']);
      expect(await ab.get('user:1')).toBeNull();
      // scoped views share the data with the root
      expect(await store.get('a:user:1')).toBe('x');
      expect((await store.keys('a')).sort()).toEqual(['a:other', 'a:user:1', 'a:user:2', 'a:user:3', 'ab:user:9']);
    });

    it('keys(prefix) treats glob characters literally', async () => {
      await store.set('x*1', 'v');
      await store.set('xy', 'v');
      await store.set('[a]b', 'v');
      await store.set('ab', 'v');
      expect(await store.keys('x*')).toEqual(['x*1']);
      expect(await store.keys('[a]')).toEqual(['[a]b']);
      expect(await store.keys('?')).toEqual([]);
    });

    it('keys(prefix) skips expired keys', async () => {
      await store.set('k:live', 'v');
      await store.set('k:short', 'v', { ttlMs: short });
      await harness.elapse(past);
      expect(await store.keys('k:')).toEqual(['k:live']);
    });

    it('ping answers, and closing a scoped view leaves the root usable', async () => {
      await store.ping();
      const view = store.scoped('v');
      await view.close();
      await view.ping();
      await store.set('still', 'works');
      expect(await store.get('still')).toBe('works');
    });
  });
}

export interface RecordStoreHarness {
  create(prefix: string): Promise<RecordStore>;
  /**
   * whether a reader outside the transaction answers while it is open (PostgreSQL); PGlite runs one
   * statement at a time, so there such a reader waits for the commit instead
   */
  concurrentReaders: boolean;
}

/** transaction(): the guarantees the transactional outbox relies on. */
export function recordStoreContract(name: string, harness: RecordStoreHarness): void {
  describe(`RecordStore transactions: ${name}`, () => {
    let store: RecordStore;

    beforeEach(async () => {
      store = await harness.create(`test:${randomUUID()}:`);
    });

    afterEach(async () => {
      await store.del(...(await store.keys('')));
      await store.close();
    });

    it('commits every write made inside, on the store and its scoped views', async () => {
      const view = store.scoped('outbox');
      const result = await store.transaction(async () => {
        await store.set('tenant', 't1');
        await store.hset('user', { name: 'ann' });
        await view.zadd('events', '0001');
        expect(await store.commitIf({ key: 'head', expected: null }, [{ op: 'set', key: 'head', value: '1' }])).toBe(true);
        return 'done';
      });
      expect(result).toBe('done');
      expect(await store.get('tenant')).toBe('t1');
      expect(await store.hgetall('user')).toEqual({ name: 'ann' });
      expect(await view.zrangeByLex('events')).toEqual(['0001']);
      expect(await store.get('head')).toBe('1');
    });

    it('rolls back every write, scoped views and nested transactions included, when fn throws', async () => {
      await store.set('tenant', 'before');
      const view = store.scoped('outbox');
      const attempt = store.transaction(async () => {
        await store.set('tenant', 'after');
        await view.zadd('events', '0001');
        await store.transaction(async () => {
          await store.incr('n');
          await view.set('x', 'y');
        });
        throw new Error('change refused');
      });
      await expect(attempt).rejects.toThrow('change refused');
      expect(await store.get('tenant')).toBe('before');
      expect(await view.zrangeByLex('events')).toEqual([]);
      expect(await store.get('n')).toBeNull();
      expect(await view.get('x')).toBeNull();
    });

    it('a write inside is visible inside before the commit', async () => {
      await store.transaction(async () => {
        await store.set('a', '1');
        expect(await store.get('a')).toBe('1');
        expect(await store.scoped('v').get('x')).toBeNull();
      });
    });

    // defined only where it can run (a skipped test proves nothing)
    if (harness.concurrentReaders)
      it('a concurrent reader sees nothing uncommitted, then everything at once', async () => {
        const reader = await harness.create(store.prefix);
        try {
          await store.set('tenant', 'v1');
          let release!: () => void;
          const hold = new Promise<void>((resolve) => {
            release = resolve;
          });
          let written!: () => void;
          const wrote = new Promise<void>((resolve) => {
            written = resolve;
          });
          const tx = store.transaction(async () => {
            await store.set('tenant', 'v2');
            await store.transaction(() => store.scoped('outbox').zadd('events', 'e1'));
            written();
            await hold;
          });
          await wrote;
          expect(await reader.get('tenant')).toBe('v1');
          expect(await reader.scoped('outbox').zrangeByLex('events')).toEqual([]);
          release();
          await tx;
          expect(await reader.get('tenant')).toBe('v2');
          expect(await reader.scoped('outbox').zrangeByLex('events')).toEqual(['e1']);
        } finally {
          await reader.close();
        }
      });
  });
}
