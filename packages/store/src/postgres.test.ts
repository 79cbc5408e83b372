import { openPglite, openPostgres, migrate, type Db } from '@keyway/db';
import { createTestDatabase, type TestDatabase } from '@keyway/testkit';
import { tcpProxy, viaProxy } from '@keyway/testkit/tcp-proxy';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgStore, StoreUnavailableError } from './index.ts';
import { recordStoreContract, storeContract } from './store.contract.ts';

let database: TestDatabase;
/** the pas service's own role, as a service connects in production */
let pas: Db;
let lite: Db;

beforeAll(async () => {
  database = await createTestDatabase();
  pas = openPostgres({ url: database.serviceUrl('pas') });
  lite = await openPglite();
  await migrate(lite);
});

afterAll(async () => {
  await pas.close();
  await lite.close();
  await database.drop();
});

const onPostgres = async (prefix: string) => createPgStore({ db: pas, schema: 'keyway_pas', prefix });
const onPglite = async (prefix: string) => createPgStore({ db: lite, schema: 'keyway_pas', prefix });

// Every write commits (and fsyncs) before it answers, so under a loaded machine a few calls can take
// longer than Redis's 50 ms; expiry itself is checked to the millisecond either way.
storeContract('postgres', { create: onPostgres, elapse: (ms) => sleep(ms), shortTtlMs: 400 });
storeContract('pglite', { create: onPglite, elapse: (ms) => sleep(ms), shortTtlMs: 400 });
recordStoreContract('postgres', { create: onPostgres, concurrentReaders: true });
recordStoreContract('pglite', { create: onPglite, concurrentReaders: false });

describe('postgres record store', () => {
  it('one service role cannot read another service’s records', async () => {
    const topic = openPostgres({ url: database.serviceUrl('topic') });
    const intruder = createPgStore({ db: topic, schema: 'keyway_pas', prefix: 'keyway:pas:' });
    try {
      await expect(topic.query('SELECT key FROM keyway_pas.store_keys')).rejects.toThrow(/permission denied/);
      await expect(intruder.get('tenant:1')).rejects.toThrow(/permission denied/);
      await expect(intruder.set('tenant:1', 'x')).rejects.toThrow(/permission denied/);
    } finally {
      await intruder.close();
      await topic.close();
    }
  });

  it('counters stay exact across two connection pools (as across two processes)', async () => {
    const other = openPostgres({ url: database.serviceUrl('pas') });
    const prefix = `test:${randomUUID()}:`;
    const stores = [createPgStore({ db: pas, schema: 'keyway_pas', prefix }), createPgStore({ db: other, schema: 'keyway_pas', prefix })];
    try {
      const counts = await Promise.all(Array.from({ length: 40 }, (_, i) => (stores[i % 2] as (typeof stores)[0]).incr('n')));
      expect(counts.sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => (stores[i % 2] as (typeof stores)[0]).commitIf({ key: 'g', expected: null }, [{ op: 'set', key: 'g', value: `${i}` }])));
      expect(wins.filter(Boolean)).toHaveLength(1);
    } finally {
      await stores[0]?.del('n', 'g');
      for (const s of stores) await s.close();
      await other.close();
    }
  });

  it('the sweep deletes expired rows; close() stops the store but leaves the lent Db open', async () => {
    const store = createPgStore({ db: pas, schema: 'keyway_pas', prefix: `test:${randomUUID()}:`, sweepIntervalMs: 50 });
    await store.set('kept', 'v');
    await store.set('short', 'v', { ttlMs: 200 });
    const rows = async () =>
      (
        await pas.query<{ n: number }>(`SELECT count(*)::int AS n FROM keyway_pas.store_keys WHERE key >= decode($1, 'hex') AND key < decode($2, 'hex')`, [
          Buffer.from(store.prefix).toString('hex'),
          Buffer.from(`${store.prefix}\xff`).toString('hex'),
        ])
      )[0]?.n;
    expect(await rows()).toBe(2);
    await sleep(600);
    expect(await rows()).toBe(1);
    await store.del('kept');
    await store.close();
    await expect(store.get('kept')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.scoped('v').ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    await pas.ping();
  });

  it('answers StoreUnavailableError at once when nothing listens', async () => {
    const nowhere = openPostgres({ url: 'postgres://keyway_pas@127.0.0.1:1/keyway', connectTimeoutMs: 1000 });
    const store = createPgStore({ db: nowhere, schema: 'keyway_pas', prefix: 'p:' });
    try {
      const started = Date.now();
      await expect(store.get('a')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.set('a', '1')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.transaction(async () => store.set('a', '1'))).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await store.close();
      await nowhere.close();
    }
  });

  it('fails with StoreUnavailableError during an outage and works again after it', async () => {
    const target = new URL(database.serviceUrl('pas'));
    const proxy = await tcpProxy(target.hostname, Number(target.port || 5432));
    const errors: Error[] = [];
    const db = openPostgres({ url: viaProxy(database.serviceUrl('pas'), proxy), connectTimeoutMs: 1000, onError: (e) => errors.push(e) });
    const store = createPgStore({ db, schema: 'keyway_pas', prefix: `test:${randomUUID()}:` });
    try {
      await store.set('a', '1');
      await proxy.cut();
      const started = Date.now();
      await expect(store.get('a')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.compareAndSet('a', '1', '2')).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(3000);

      await proxy.restore();
      expect(await store.get('a')).toBe('1');
      expect(await store.compareAndSet('a', '1', '2')).toBe(true);
      await store.del('a');
    } finally {
      await store.close();
      await db.close();
      await proxy.cut();
    }
  });
});
