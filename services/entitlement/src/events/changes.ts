import { AsyncLocalStorage } from 'node:async_hooks';
import { outbox, timeSortableId, type Broker, type TopicRef } from '@keyway/broker';
import { CHANGE_EVENT_SUBSCRIBERS, CHANGE_EVENTS_TOPIC, ChangeEvent } from '@keyway/contracts';
import type { Logger } from '@keyway/kit';
import type { RecordStore } from '@keyway/store';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type NewChange = DistributiveOmit<ChangeEvent, 'id' | 'at'>;

/**
 * Publishes removals for the revocation path through a transactional outbox (@keyway/broker outbox)
 * in the system of record: inside `atomically`, the change and its event are written in one database
 * transaction, so neither exists without the other; the event is published with publisher confirms
 * after the commit and only then dropped from the outbox. A broker outage delays events (the relay
 * retries every few seconds, for as long as it takes); it never loses them, and Redis plays no part.
 */
export function changeEvents(records: RecordStore, broker: Broker, logger: Logger, topic: TopicRef = CHANGE_EVENTS_TOPIC, retryMs = 2000) {
  const relay = outbox(records, broker, topic, { subscribers: CHANGE_EVENT_SUBSCRIBERS, retryMs, logger });
  const inTransaction = new AsyncLocalStorage<true>();
  return {
    /** Records the event in the outbox; outside `atomically`, tries to publish it right away. */
    async emit(change: NewChange): Promise<ChangeEvent> {
      const event = ChangeEvent.parse({ ...change, id: timeSortableId(), at: new Date().toISOString() });
      logger.info(`${event.type}`, { tenant: event.tenant, eventId: event.id });
      if (inTransaction.getStore()) await relay.stage(event);
      else await relay.add(event);
      return event;
    },
    /**
     * Runs a change to the records and the events it emits in one transaction, then publishes. `fn`
     * must only touch the records: no call to another service (the embedded database serves one
     * transaction at a time, and a remote call inside one would hold it).
     */
    async atomically<T>(fn: () => Promise<T>): Promise<T> {
      // a nested one would publish at its end what the outer transaction may still roll back
      if (inTransaction.getStore()) throw new Error('events.atomically does not nest');
      const result = await inTransaction.run(true, () => records.transaction(fn));
      await relay.flush();
      return result;
    },
    flush: relay.flush,
    close: relay.close,
  };
}
export type ChangeEvents = ReturnType<typeof changeEvents>;
