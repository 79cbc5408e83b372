import { consume, type Broker, type TopicRef } from '@keyway/broker';
import { CHANGE_EVENTS_TOPIC, ChangeEvent } from '@keyway/contracts';
import type { Logger } from '@keyway/kit';
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
  }
}

/** Follows the entitlement service's change events and revokes the affected SAS keys (strict mode). */
export function revokeOnEntitlementChange(broker: Broker, issued: IssuedRegistry, logger: Logger, topic: TopicRef = CHANGE_EVENTS_TOPIC) {
  return consume(
    broker,
    topic,
    'pac',
    async (body) => {
      const event = ChangeEvent.parse(JSON.parse(body.toString('utf8')));
      const revoked = await issued.revoke(scopeOf(event));
      for (const key of revoked) {
        logger.info('sas_key.revoked', { reason: event.type, eventId: event.id, keyId: key.keyId, tenant: key.tenant, topic: key.topic, sub: key.sub });
      }
    },
    { onError: (err) => logger.warn('change event not handled yet; will retry', { err }) },
  );
}
