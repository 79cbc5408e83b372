import { randomUUID } from 'node:crypto';
import type { Broker, TopicRef } from '@keyway/broker';
import { CHANGE_EVENT_SUBSCRIBERS, CHANGE_EVENTS_TOPIC, ChangeEvent } from '@keyway/contracts';
import type { Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type NewChange = DistributiveOmit<ChangeEvent, 'id' | 'at'>;

/**
 * Publishes removals for the revocation path through an outbox: the event is stored with the
 * change, then published with publisher confirms and only then dropped from the outbox. A broker
 * outage delays events (the relay retries every few seconds); it never loses them.
 */
export function changeEvents(store: Store, broker: Broker, logger: Logger, topic: TopicRef = CHANGE_EVENTS_TOPIC, retryMs = 2000) {
  const outboxKey = (id: string) => `outbox:${id}`;
  let declared = false;
  let flushing: Promise<void> | undefined;

  async function publishPending(): Promise<void> {
    if (!declared) {
      for (const sub of CHANGE_EVENT_SUBSCRIBERS) await broker.declareSubscription(topic, sub);
      declared = true;
    }
    const ids = (await store.smembers('outbox')).sort();
    for (const id of ids) {
      const raw = await store.get(outboxKey(id));
      if (raw !== null) await broker.publish(topic, Buffer.from(raw), { messageId: id, contentType: 'application/json' });
      await store.del(outboxKey(id));
      await store.srem('outbox', id);
    }
  }

  const flush = (): Promise<void> =>
    (flushing ??= publishPending()
      .catch((err: unknown) => logger.warn('change events not yet published; will retry', { err }))
      .finally(() => {
        flushing = undefined;
      }));

  const timer = setInterval(() => void flush(), retryMs);
  timer.unref();

  return {
    /** Records the event in the outbox and tries to publish it right away. */
    async emit(change: NewChange): Promise<ChangeEvent> {
      // Ids sort by time so the relay publishes in order.
      const event = ChangeEvent.parse({ ...change, id: `${Date.now().toString(36).padStart(10, '0')}-${randomUUID()}`, at: new Date().toISOString() });
      await store.set(outboxKey(event.id), JSON.stringify(event));
      await store.sadd('outbox', event.id);
      logger.info(`${event.type}`, { tenant: event.tenant, eventId: event.id });
      await flush();
      return event;
    },
    flush,
    close() {
      clearInterval(timer);
    },
  };
}
export type ChangeEvents = ReturnType<typeof changeEvents>;
