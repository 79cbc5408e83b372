import { outbox, timeSortableId, type Broker, type TopicRef } from '@keyway/broker';
import { CHANGE_EVENT_SUBSCRIBERS, CHANGE_EVENTS_TOPIC, ChangeEvent } from '@keyway/contracts';
import type { Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type NewChange = DistributiveOmit<ChangeEvent, 'id' | 'at'>;

/**
 * Publishes removals for the revocation path through an outbox (@keyway/broker outbox): the event is
 * stored with the change, then published with publisher confirms and only then dropped from the
 * outbox. A broker outage delays events (the relay retries every few seconds); it never loses them.
 */
export function changeEvents(store: Store, broker: Broker, logger: Logger, topic: TopicRef = CHANGE_EVENTS_TOPIC, retryMs = 2000) {
  const relay = outbox(store, broker, topic, { subscribers: CHANGE_EVENT_SUBSCRIBERS, retryMs, logger });
  return {
    /** Records the event in the outbox and tries to publish it right away. */
    async emit(change: NewChange): Promise<ChangeEvent> {
      const event = ChangeEvent.parse({ ...change, id: timeSortableId(), at: new Date().toISOString() });
      logger.info(`${event.type}`, { tenant: event.tenant, eventId: event.id });
      await relay.add(event);
      return event;
    },
    flush: relay.flush,
    close: relay.close,
  };
}
export type ChangeEvents = ReturnType<typeof changeEvents>;
