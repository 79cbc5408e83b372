import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { securityMetrics, type AuditLog } from '@keyway/audit';
import { createMemoryBroker, outbox, timeSortableId } from '@keyway/broker';
import { CHANGE_EVENT_SUBSCRIBERS } from '@keyway/contracts';
import { silentLogger } from '@keyway/kit';
import { createMemoryStore } from '@keyway/store';
import { issuedRegistry } from '../issued/registry.ts';
import { revokeOnEntitlementChange } from './on-entitlement-change.ts';

const topic = { tenant: 'system', topic: 'changes-unit' };
const noTrail = { audit: { record: async () => undefined } as unknown as AuditLog, metrics: securityMetrics() };

describe('PAC follows family revocations', () => {
  it('a family revoked while PAC is down has its SAS keys revoked once PAC is back (nothing lost)', async () => {
    const broker = createMemoryBroker({});
    const pacStore = createMemoryStore({ prefix: 'pac:' });
    const issued = issuedRegistry(pacStore);
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    await issued.record({ keyId: 'k-1', tenant: 't-1', topic: 'edr-events', rights: 'send', sub: 'u-1', fid: 'f-1', expiresAt });
    await issued.record({ keyId: 'k-2', tenant: 't-1', topic: 'edr-events', rights: 'send', sub: 'u-1', fid: 'f-2', expiresAt });

    // PAS announces while no PAC consumes: the event waits in PAC's durable subscription
    const relay = outbox(createMemoryStore({ prefix: 'pas:' }), broker, topic, { subscribers: CHANGE_EVENT_SUBSCRIBERS, logger: silentLogger });
    await relay.add({ id: timeSortableId(), at: new Date().toISOString(), type: 'family.revoked', tenant: 't-1', sub: 'u-1', fid: 'f-1', reason: 'client_revocation' });
    await sleep(200);
    expect(await issued.isRevoked('k-1')).toBe(false);

    const follower = revokeOnEntitlementChange(broker, issued, silentLogger, noTrail, topic);
    try {
      for (let waited = 0; !(await issued.isRevoked('k-1')) && waited < 5000; waited += 20) await sleep(20);
      expect(await issued.isRevoked('k-1')).toBe(true);
      expect(await issued.isRevoked('k-2')).toBe(false);
      expect(await issued.isFamilyRevoked('f-1')).toBe(true);
    } finally {
      await follower.stop();
      relay.close();
      await broker.close();
    }
  });
});
