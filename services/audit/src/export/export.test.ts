import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createAuditLog } from '@keyway/audit';
import { ApiError } from '@keyway/clients';
import type { Batch } from '@keyway/contracts';
import { silentLogger } from '@keyway/kit';
import { createMemoryStore } from '@keyway/store';
import { auditExport } from './export.ts';

describe('auditExport: at least once through the topic service', () => {
  it('moves the checkpoint only after every batch of the page was accepted: a 429 republishes the page, skips nothing', async () => {
    const auditStore = createMemoryStore({ prefix: 'audit:' });
    const store = createMemoryStore({ prefix: 'audit-service:' });
    const pas = createAuditLog({ store: auditStore, service: 'pas', logger: silentLogger });
    for (const tenant of ['t-a', 't-b', 't-a']) await pas.record({ action: 'token.issued', outcome: 'success', tenant });
    await pas.record({ action: 'token.issued', outcome: 'success', tenant: 't-none' });

    const published: Batch[] = [];
    let refused = false;
    const exporter = auditExport(
      {
        auditStore,
        store,
        entitlement: { feedEntitlement: async (tenant, feed) => ({ tenant, feed, entitled: tenant !== 't-none' }) },
        topic: {
          publishInternal: async (batch) => {
            // the second batch of the first page is over the tenant's quota
            if (published.length === 1 && !refused) {
              refused = true;
              throw new ApiError(429, 'too_many_requests', 'over the quota', '1');
            }
            published.push(batch);
            return { id: batch.id, tenant: batch.tenant, topic: batch.topic };
          },
        },
        logger: silentLogger,
      },
      { intervalMs: 50, operatorTenant: 'vendor' },
    );
    try {
      for (const deadline = Date.now() + 5000; (await store.get('audit-export:pas')) !== '4'; ) {
        if (Date.now() > deadline) throw new Error('the checkpoint never reached the head');
        await sleep(20);
      }
    } finally {
      await exporter.stop();
    }
    // t-a's batch went out twice (the page was published again after the refusal), t-b's once; t-none's never
    expect(published.map((b) => b.id)).toEqual(['audit:pas:t-a:1-3', 'audit:pas:t-a:1-3', 'audit:pas:t-b:2-2']);
    expect(published.flatMap((b) => b.records.map((r) => (r as { seq: number }).seq))).toEqual([1, 3, 1, 3, 2]);
    expect(refused).toBe(true);
  });
});
