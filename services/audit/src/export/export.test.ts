import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog } from '@keyway/audit';
import { ApiError } from '@keyway/clients';
import type { Batch } from '@keyway/contracts';
import { silentLogger } from '@keyway/kit';
import { createMemoryStore } from '@keyway/store';
import { connectTestDatabase, type TestDatabaseConnections } from '@keyway/testkit';
import { auditExport } from './export.ts';

let database: TestDatabaseConnections;
beforeAll(async () => {
  database = await connectTestDatabase();
});
afterAll(() => database?.close());
beforeEach(() => database.admin.query('TRUNCATE keyway_audit.events'));

/** An exporter over a test database's trail whose topic service refuses what `refuse` says (429, as a quota does). */
function rig(refuse: (batch: Batch) => boolean) {
  const store = createMemoryStore({ prefix: 'audit-service:' });
  const pas = createAuditLog({ db: database.as('pas'), store: createMemoryStore({ prefix: 'pas:' }), service: 'pas', logger: silentLogger });
  const published: Batch[] = [];
  const start = () =>
    auditExport(
      {
        auditDb: database.as('audit'),
        store,
        entitlement: { feedEntitlement: async (tenant, feed) => ({ tenant, feed, entitled: tenant !== 't-none' }) },
        topic: {
          publishInternal: async (batch) => {
            if (refuse(batch)) throw new ApiError(429, 'too_many_requests', 'over the quota', '1');
            published.push(batch);
            return { id: batch.id, tenant: batch.tenant, topic: batch.topic };
          },
        },
        logger: silentLogger,
      },
      { intervalMs: 50, operatorTenant: 'vendor' },
    );
  const record = (tenant: string) => pas.record({ action: 'token.issued', outcome: 'success', tenant });
  const settled = async (head: number) => {
    for (const deadline = Date.now() + 5000; (await store.get('audit-export:pas')) !== String(head) || (await store.zrangeByLex('audit-export-held:pas')).length > 0; ) {
      if (Date.now() > deadline) throw new Error('the export never caught up');
      await sleep(20);
    }
  };
  const seqsOf = (tenant: string) => published.filter((b) => b.tenant === tenant).flatMap((b) => b.records.map((r) => (r as { seq: number }).seq));
  return { store, published, start, record, settled, seqsOf };
}

describe('auditExport: at least once through the topic service, no tenant holding back another', () => {
  it('a refused batch holds back its tenant alone; the tenant catches up from its hold, skipping nothing', async () => {
    let refusals = 1;
    const { published, start, record, settled, seqsOf } = rig((batch) => batch.tenant === 't-a' && refusals-- > 0);
    for (const tenant of ['t-a', 't-b', 't-a', 't-none']) await record(tenant);
    const exporter = start();
    try {
      await settled(4);
    } finally {
      await exporter.stop();
    }
    // t-b was not held back by t-a's refusal; t-a's events arrived once it was accepted; t-none's never
    expect(published.map((b) => b.id)).toEqual(['audit:pas:t-b:2-2', 'audit:pas:t-a:1-3']);
    expect(seqsOf('t-a')).toEqual([1, 3]);
    expect(refusals).toBeLessThan(0);
  });

  it('a tenant refused round after round does not stop the stream: the others get every later page', async () => {
    let blocked = true;
    const { store, start, record, settled, seqsOf } = rig((batch) => batch.tenant === 't-a' && blocked);
    for (let i = 0; i < 150; i++) await record(i % 3 === 0 ? 't-a' : 't-b');
    const exporter = start();
    try {
      for (const deadline = Date.now() + 5000; (await store.get('audit-export:pas')) !== '150'; ) {
        if (Date.now() > deadline) throw new Error('the stream stopped behind the refused tenant');
        await sleep(20);
      }
      expect(seqsOf('t-b')).toHaveLength(100);
      expect(seqsOf('t-a')).toEqual([]);
      expect(await store.get('audit-export-hold:pas:t-a')).toBe('0');
      // the quota frees up: t-a catches up with all of its 50 events, in order, once each
      blocked = false;
      await settled(150);
    } finally {
      await exporter.stop();
    }
    expect(seqsOf('t-a')).toEqual(Array.from({ length: 50 }, (_, i) => 1 + i * 3));
  });
});
