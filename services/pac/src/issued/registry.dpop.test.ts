import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { securityMetrics, type AuditLog } from '@keyway/audit';
import { createMemoryBroker, outbox, timeSortableId } from '@keyway/broker';
import { CHANGE_EVENT_SUBSCRIBERS } from '@keyway/contracts';
import { silentLogger } from '@keyway/kit';
import { createMemoryStore, createPgStore } from '@keyway/store';
import { connectTestDatabase, type TestDatabaseConnections } from '@keyway/testkit';
import { revokeOnEntitlementChange } from '../revocation/on-entitlement-change.ts';
import { issuedRegistry, type IssuedSasKey } from './registry.ts';

const JKT_A = 'A'.repeat(43);
const JKT_B = 'B'.repeat(43);
const key = (keyId: string, fid: string, jkt?: string, tenant = 't-1'): IssuedSasKey => ({
  keyId,
  tenant,
  topic: 'edr-events',
  rights: 'listen',
  sub: 'u-1',
  fid,
  expiresAt: Math.floor(Date.now() / 1000) + 3600,
  ...(jkt && { jkt }),
});

let database: TestDatabaseConnections;
beforeAll(async () => {
  database = await connectTestDatabase();
});
afterAll(() => database?.close());

/** the registry on PAC's records in PostgreSQL, as PAC runs it, under a prefix of its own */
const onPostgres = (name: string) => issuedRegistry(createPgStore({ db: database.as('pac'), schema: 'keyway_pac', prefix: `${name}:` }));

describe('issued SAS keys bound to a DPoP key (RFC 9449 cnf.jkt), on PostgreSQL', () => {
  it('records the binding with the key, and revoking the key pair revokes every key bound to it in the tenant, whatever the family', async () => {
    const issued = onPostgres('bound');
    await issued.record(key('k-a1', 'f-1', JKT_A));
    await issued.record(key('k-a2', 'f-2', JKT_A));
    await issued.record(key('k-b1', 'f-1', JKT_B));
    await issued.record(key('k-none', 'f-1'));
    await issued.record(key('k-a-other-tenant', 'f-9', JKT_A, 't-2'));
    expect((await issued.find('k-a1'))?.jkt).toBe(JKT_A);
    expect((await issued.find('k-none'))?.jkt).toBeUndefined();

    expect((await issued.revokeBound('t-1', JKT_A)).map((k) => k.keyId).sort()).toEqual(['k-a1', 'k-a2']);
    for (const [keyId, revoked] of [
      ['k-a1', true],
      ['k-a2', true],
      ['k-b1', false],
      ['k-none', false],
      ['k-a-other-tenant', false],
    ] as const) {
      expect(await issued.isRevoked(keyId), keyId).toBe(revoked);
    }
    // a second revocation revokes nothing new; a key minted with the revoked key pair afterwards is revoked as it is recorded
    expect(await issued.revokeBound('t-1', JKT_A)).toEqual([]);
    expect(await issued.issue(key('k-a-late', 'f-3', JKT_A))).toBe('revoked');
    expect(await issued.isRevoked('k-a-late')).toBe(true);
  });

  it('one holder’s key in one second is not shared across bindings: another DPoP key (or none) mints another', async () => {
    const issued = onPostgres('shared');
    const bound = key('k-same-second', 'f-1', JKT_A);
    expect(await issued.issue(bound)).toBe('issued');
    expect(await issued.issue({ ...bound })).toBe('issued');
    expect(await issued.issue({ ...bound, jkt: JKT_B })).toBe('taken');
    const { jkt: _, ...unbound } = bound;
    expect(await issued.issue(unbound)).toBe('taken');
    expect((await issued.find('k-same-second'))?.jkt).toBe(JKT_A);
  });
});

describe('PAC follows dpop_key.revoked', () => {
  it('revokes the SAS keys bound to the revoked key pair, audited as sas_key.revoked', async () => {
    const topic = { tenant: 'system', topic: 'changes-dpop-unit' };
    const broker = createMemoryBroker({});
    const issued = onPostgres('event');
    await issued.record(key('k-1', 'f-1', JKT_A));
    await issued.record(key('k-2', 'f-1'));
    const recorded: unknown[] = [];
    const trail = { audit: { record: async (event: unknown) => void recorded.push(event) } as unknown as AuditLog, metrics: securityMetrics() };
    const relay = outbox(createMemoryStore({ prefix: 'pas:' }), broker, topic, { subscribers: CHANGE_EVENT_SUBSCRIBERS, logger: silentLogger });
    const follower = revokeOnEntitlementChange(broker, issued, silentLogger, trail, topic);
    try {
      await relay.add({ id: timeSortableId(), at: new Date().toISOString(), type: 'dpop_key.revoked', tenant: 't-1', jkt: JKT_A, reason: 'operator' });
      for (let waited = 0; !(await issued.isRevoked('k-1')) && waited < 5000; waited += 20) await sleep(20);
      expect(await issued.isRevoked('k-1')).toBe(true);
      expect(await issued.isRevoked('k-2')).toBe(false);
      expect(recorded).toEqual([
        expect.objectContaining({ action: 'sas_key.revoked', tenant: 't-1', tokenId: 'k-1', reason: 'dpop_key.revoked', detail: expect.objectContaining({ jkt: JKT_A, dpop_reason: 'operator' }) }),
      ]);
    } finally {
      await follower.stop();
      relay.close();
      await broker.close();
    }
  });
});
