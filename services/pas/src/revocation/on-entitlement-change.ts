import type { AuditLog, SecurityMetrics } from '@keyway/audit';
import type { Broker, TopicRef } from '@keyway/broker';
import { type ChangeEvent, feedsFromScope } from '@keyway/contracts';
import { followChangeEvents, type Logger } from '@keyway/kit';
import type { FamilyInfo, RefreshFamilies } from '../families/refresh-family.ts';

/** The families an entitlement change takes away (strict mode). */
async function affectedFamilies(families: RefreshFamilies, event: ChangeEvent): Promise<FamilyInfo[]> {
  switch (event.type) {
    case 'user.removed':
    case 'role.removed':
    // A new password ends every session opened with the old one, as a removal would.
    case 'credentials.changed':
      // Tokens carry the roles they were issued with: any removed role means a fresh login.
      return (await families.ofSubject(event.sub)).filter((f) => f.tid === event.tenant);
    case 'feed.removed':
      return (await families.ofTenant(event.tenant)).filter((f) => feedsFromScope(f.scope).includes(event.feed));
    case 'tenant.suspended':
    case 'tenant.removed':
      return families.ofTenant(event.tenant);
    // PAS's own announcements: the families are already revoked here.
    case 'family.revoked':
    case 'dpop_key.revoked':
    // Release rights narrowed, maybe not to nothing: the next refresh answers what remains (strict
    // mode), or invalid_grant and revokes the family when nothing does; the releases service asks
    // again at every open, and introspection re-checks, so nothing granted outlives the change.
    case 'products.changed':
      return [];
  }
}

/**
 * Follows the entitlement service's change events and revokes the affected refresh families, each
 * recorded as refresh_family.revoked with the change as its reason. Taking access away never waits
 * for the trail: a revocation the trail cannot take is still made (record() logs and counts the
 * failed append), since failing closed means refusing to grant, not refusing to revoke.
 */
export function revokeOnEntitlementChange(broker: Broker, families: RefreshFamilies, logger: Logger, trail: { audit: AuditLog; metrics: SecurityMetrics }, topic?: TopicRef) {
  return followChangeEvents(
    broker,
    'pas',
    logger,
    async (event) => {
      for (const family of await affectedFamilies(families, event)) {
        // PAC follows the same event and revokes the keys in its scope: no announcement needed.
        if (await families.revoke(family.fid, event.type, { announce: false })) {
          logger.info('refresh_family.revoked', { reason: event.type, eventId: event.id, fid: family.fid, sub: family.sub, tenant: family.tid });
          trail.metrics.tokensRevoked.add(1, { tenant: family.tid, reason: event.type });
          await trail.audit
            .record({ action: 'refresh_family.revoked', outcome: 'success', tenant: family.tid, subject: family.sub, reason: event.type, detail: { family: family.fid, change_event: event.id } })
            .catch(() => undefined);
        }
      }
    },
    topic,
  );
}
