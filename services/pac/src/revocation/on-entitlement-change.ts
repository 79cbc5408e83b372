import type { AuditLog, SecurityMetrics } from '@keyway/audit';
import type { Broker, TopicRef } from '@keyway/broker';
import type { ChangeEvent } from '@keyway/contracts';
import { followChangeEvents, type Logger } from '@keyway/kit';
import type { IssuedRegistry, IssuedSasKey, RevocationScope } from '../issued/registry.ts';

export type RevocationTrail = { audit: AuditLog; metrics: SecurityMetrics };

/**
 * One revoked key in the log, the metrics and the trail (sas_key.revoked, the reason as given).
 * Revoking never waits for the trail: a revocation the trail cannot take is still made (record() logs
 * and counts the failed append).
 */
export async function recordRevocation(logger: Logger, trail: RevocationTrail, key: IssuedSasKey, reason: string, detail: Record<string, string>): Promise<void> {
  logger.info('sas_key.revoked', { reason, keyId: key.keyId, tenant: key.tenant, topic: key.topic, sub: key.sub, ...detail });
  trail.metrics.sasKeysRevoked.add(1, { tenant: key.tenant, reason });
  await trail.audit
    .record({
      action: 'sas_key.revoked',
      outcome: 'success',
      tenant: key.tenant,
      subject: key.sub,
      tokenId: key.keyId,
      reason,
      detail: { topic: key.topic, rights: key.rights, family: key.fid, ...detail },
    })
    .catch(() => undefined);
}

/** The keys a change takes away; none for a change of release rights (PAC's keys are for feeds). */
function scopeOf(event: ChangeEvent): RevocationScope | undefined {
  switch (event.type) {
    case 'user.removed':
    case 'role.removed':
    case 'credentials.changed':
      return { tenant: event.tenant, sub: event.sub };
    case 'feed.removed':
      return { tenant: event.tenant, topic: event.feed };
    case 'tenant.suspended':
    case 'tenant.removed':
      return { tenant: event.tenant };
    // PAS revoked a refresh family (logout, reuse detection, an entitlement change): its keys go with it.
    case 'family.revoked':
      return { tenant: event.tenant, fid: event.fid };
    case 'products.changed':
    // revoked by thumbprint, not by scope: see below
    case 'dpop_key.revoked':
      return undefined;
  }
}

/**
 * Follows the entitlement service's change events and PAS's family and DPoP key revocations and revokes the
 * affected SAS keys (strict mode), each recorded as sas_key.revoked with the change as its reason.
 */
export function revokeOnEntitlementChange(broker: Broker, issued: IssuedRegistry, logger: Logger, trail: RevocationTrail, topic?: TopicRef) {
  return followChangeEvents(
    broker,
    'pac',
    logger,
    async (event) => {
      // PAS revoked an agent's key pair (RFC 9449 cnf.jkt): every SAS key bound to it goes, whatever family minted it.
      if (event.type === 'dpop_key.revoked') {
        for (const key of await issued.revokeBound(event.tenant, event.jkt)) {
          await recordRevocation(logger, trail, key, event.type, { change_event: event.id, jkt: event.jkt, dpop_reason: event.reason });
        }
        return;
      }
      const scope = scopeOf(event);
      if (!scope) return;
      for (const key of await issued.revoke(scope)) {
        await recordRevocation(logger, trail, key, event.type, { change_event: event.id, ...(event.type === 'family.revoked' && { family_reason: event.reason }) });
      }
    },
    topic,
  );
}
