import { randomUUID } from 'node:crypto';
import { tcpProxy, viaProxy } from '@keyway/testkit/tcp-proxy';
import { ServerError, silentLogger } from '@keyway/kit';
import { createMemoryStore, createRedisStore, type Store } from '@keyway/store';
import { describe, expect, it } from 'vitest';
import { auditContract } from './audit.contract.ts';
import { createAuditLog } from './audited.ts';
import { verifyChain } from './verify.ts';

const REDIS_URL = process.env.KEYWAY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

// the memory store has one keyspace per root, so its "connections" are that root again
const memoryRoots = new Map<string, Store>();
auditContract('memory', {
  create: async (prefix) => {
    const store = createMemoryStore({ prefix });
    memoryRoots.set(prefix, store);
    return store;
  },
  connect: async (prefix, n) => {
    const root = memoryRoots.get(prefix) as Store;
    return Array.from({ length: n }, () => root);
  },
});

auditContract('redis', {
  create: (prefix) => createRedisStore({ url: REDIS_URL, prefix }),
  connect: (prefix, n) => Promise.all(Array.from({ length: n }, () => createRedisStore({ url: REDIS_URL, prefix }))),
});

describe('audit trail: redis outage', () => {
  it('record() fails closed with ServerError while Redis is cut off, and the chain continues unbroken after', async () => {
    const target = new URL(REDIS_URL);
    const proxy = await tcpProxy(target.hostname, Number(target.port || 6379));
    const prefix = `test:${randomUUID()}:audit:`;
    const store = await createRedisStore({ url: viaProxy(REDIS_URL, proxy), prefix });
    const direct = await createRedisStore({ url: REDIS_URL, prefix });
    try {
      const audit = createAuditLog({ store, service: 'pas', logger: silentLogger });
      await audit.record({ action: 'grant.success', outcome: 'success', tenant: 'acme' });
      await audit.ready();

      await proxy.cut();
      await expect(audit.record({ action: 'grant.success', outcome: 'success', tenant: 'acme' })).rejects.toBeInstanceOf(ServerError);
      await expect(audit.ready()).rejects.toThrow();

      await proxy.restore();
      for (const deadline = Date.now() + 5000; ; ) {
        try {
          await store.ping();
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(await audit.record({ action: 'grant.success', outcome: 'success', tenant: 'acme' })).toMatchObject({ seq: 2 });
      expect(await verifyChain(direct, 'pas')).toMatchObject({ ok: true, checked: 2 });
    } finally {
      await direct.del(...(await direct.keys('')));
      await direct.close();
      await store.close();
      await proxy.cut();
    }
  });
});
