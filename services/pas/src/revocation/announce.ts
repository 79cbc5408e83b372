import { outbox, timeSortableId, type Broker, type TopicRef } from '@keyway/broker';
import { CHANGE_EVENT_SUBSCRIBERS, CHANGE_EVENTS_TOPIC, ChangeEvent } from '@keyway/contracts';
import type { Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import type { FamilyInfo } from '../families/refresh-family.ts';

/**
 * Announces every family revocation to PAC as a `family.revoked` event (and every revoked DPoP key
 * pair as `dpop_key.revoked`) on the revocation topic,
 * through PAS's own outbox: stored before the family is deleted, published with confirms, retried
 * while the broker is down, and waiting in PAC's durable subscription while PAC is down. PAC revokes
 * the SAS keys minted from the family (services/pac/src/revocation/on-entitlement-change.ts).
 */
export function familyRevocationAnnouncer(store: Store, broker: Broker, logger: Logger, topic: TopicRef = CHANGE_EVENTS_TOPIC) {
  const relay = outbox(store, broker, topic, { subscribers: CHANGE_EVENT_SUBSCRIBERS, logger });
  return {
    async announce(family: FamilyInfo, reason: string): Promise<void> {
      const event = ChangeEvent.parse({
        id: timeSortableId(),
        at: new Date().toISOString(),
        type: 'family.revoked',
        tenant: family.tid,
        sub: family.sub,
        fid: family.fid,
        reason: reason.slice(0, 128),
      });
      await relay.add(event);
    },
    /** RFC 9449: an operator revoked a DPoP key pair; PAC revokes the SAS keys bound to it in this tenant. */
    async announceDpopKey(tenant: string, jkt: string, reason: string): Promise<void> {
      await relay.add(ChangeEvent.parse({ id: timeSortableId(), at: new Date().toISOString(), type: 'dpop_key.revoked', tenant, jkt, reason: reason.slice(0, 128) }));
    },
    close: relay.close,
  };
}
