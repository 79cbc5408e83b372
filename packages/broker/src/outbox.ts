import { randomUUID } from 'node:crypto';
import type { Broker, TopicRef } from './broker.ts';

/** The part of @keyway/store's Store an outbox uses. */
export interface OutboxStore {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<boolean>;
  del(...keys: string[]): Promise<number>;
  sadd(key: string, ...members: string[]): Promise<number>;
  srem(key: string, ...members: string[]): Promise<number>;
  smembers(key: string): Promise<string[]>;
}

export interface OutboxOptions {
  /** the subscriptions declared before the first publish, so nothing is missed before a consumer starts */
  subscribers: readonly string[];
  /** how often pending events are retried (default 2 s) */
  retryMs?: number;
  logger: { warn(message: string, fields?: Record<string, unknown>): void };
}

/**
 * The transactional outbox for events that take access away: an event is stored first, then
 * published with publisher confirms and only then dropped. A broker outage delays events (the relay
 * retries every `retryMs`); it never loses them, and a consumer that is down finds them waiting in
 * its durable subscription. Event ids must sort by time so the relay publishes in order.
 */
export function outbox(store: OutboxStore, broker: Broker, topic: TopicRef, options: OutboxOptions) {
  const eventKey = (id: string) => `outbox:${id}`;
  let declared = false;
  let flushing: Promise<void> | undefined;

  async function publishPending(): Promise<void> {
    if (!declared) {
      for (const sub of options.subscribers) await broker.declareSubscription(topic, sub);
      declared = true;
    }
    const ids = (await store.smembers('outbox')).sort();
    for (const id of ids) {
      const raw = await store.get(eventKey(id));
      if (raw !== null) await broker.publish(topic, Buffer.from(raw), { messageId: id, contentType: 'application/json' });
      await store.del(eventKey(id));
      await store.srem('outbox', id);
    }
  }

  const flush = (): Promise<void> =>
    (flushing ??= publishPending()
      .catch((err: unknown) => options.logger.warn('events not yet published; will retry', { err, topic: topic.topic }))
      .finally(() => {
        flushing = undefined;
      }));

  const timer = setInterval(() => void flush(), options.retryMs ?? 2000);
  timer.unref();

  /** Stores the event (a JSON object with a time-sortable id) without publishing it. */
  const stage = async <E extends { id: string }>(event: E): Promise<void> => {
    await store.set(eventKey(event.id), JSON.stringify(event));
    await store.sadd('outbox', event.id);
  };
  return {
    /**
     * For an event written in the same database transaction as the change it announces: the caller
     * flushes once that transaction has committed (a flush inside it would publish what may still
     * roll back).
     */
    stage,
    /** Stores the event, then tries to publish it right away. */
    async add<E extends { id: string }>(event: E): Promise<void> {
      await stage(event);
      await flush();
    },
    flush,
    close() {
      clearInterval(timer);
    },
  };
}

/** An event id that sorts by time (for outbox ordering), unique across instances. */
export const timeSortableId = (now: number = Date.now()) => `${now.toString(36).padStart(10, '0')}-${randomUUID()}`;
