import type { AuditLog, SecurityMetrics } from '@keyway/audit';
import type { Broker, TopicRef } from '@keyway/broker';
import type { ChangeEvent } from '@keyway/contracts';
import { followChangeEvents, type Logger } from '@keyway/kit';
import type { IssuedRegistry, RevocationScope } from '../issued/registry.ts';

function scopeOf(event: ChangeEvent): RevocationScope {
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
  }
}

/**
 * Follows the entitlement service's change events and PAS's family revocations and revokes the
 * affected SAS keys (strict mode), each recorded as sas_key.revoked with the change as its reason. Revoking never waits for the trail:
 * a revocation the trail cannot take is still made (record() logs and counts the failed append).
 */
export function revokeOnEntitlementChange(broker: Broker, issued: IssuedRegistry, logger: Logger, trail: { audit: AuditLog; metrics: SecurityMetrics }, topic?: TopicRef) {
  return followChangeEvents(
    broker,
    'pac',
    logger,
    async (event) => {
      const revoked = await issued.revoke(scopeOf(event));
      const reason = event.type;
      for (const key of revoked) {
        logger.info('sas_key.revoked', { reason, eventId: event.id, keyId: key.keyId, tenant: key.tenant, topic: key.topic, sub: key.sub });
        trail.metrics.sasKeysRevoked.add(1, { tenant: key.tenant, reason });
        await trail.audit
          .record({
            action: 'sas_key.revoked',
            outcome: 'success',
            tenant: key.tenant,
            subject: key.sub,
            tokenId: key.keyId,
            reason,
            detail: { topic: key.topic, rights: key.rights, family: key.fid, change_event: event.id, ...(event.type === 'family.revoked' && { family_reason: event.reason }) },
          })
          .catch(() => undefined);
      }
    },
    topic,
  );
}
