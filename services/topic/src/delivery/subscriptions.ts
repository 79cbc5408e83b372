import { NoSubscriptionError, type Broker, type TopicRef } from '@keyway/broker';
import type { Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';

export const DEFAULT_SUBSCRIPTION = 'default';

/**
 * Declarations are idempotent but cost a broker round trip, so each subscription is declared once
 * per process. A failed declaration is forgotten so the next request tries again.
 *
 * Every topic-service instance checks the queue depth of every subscription of a topic before a
 * publish, including subscriptions only another instance has seen, so the names are recorded in the
 * shared store. The write is not awaited (receiving does not depend on the store) and is tried
 * again on the next request for the subscription when it failed.
 */
export function subscriptionRegistry(broker: Broker, store: Store, logger: Logger) {
  const declared = new Map<string, Promise<void>>();
  const recorded = new Set<string>();
  const key = (topic: TopicRef, subscription: string) => `${topic.tenant}/${topic.topic}/${subscription}`;
  // tenant and topic names are slugs, so ':' cannot be part of either
  const namesKey = (topic: TopicRef) => `subscriptions:${topic.tenant}:${topic.topic}`;

  const record = (topic: TopicRef, subscription: string, k: string): void => {
    if (subscription === DEFAULT_SUBSCRIPTION || recorded.has(k)) return;
    recorded.add(k);
    store.sadd(namesKey(topic), subscription).catch((err: unknown) => {
      recorded.delete(k);
      logger.warn('subscription.record_failed', { tenant: topic.tenant, topic: topic.topic, subscription, err });
    });
  };

  const ensure = (topic: TopicRef, subscription: string): Promise<void> => {
    const k = key(topic, subscription);
    record(topic, subscription, k);
    let pending = declared.get(k);
    if (!pending) {
      pending = broker.declareSubscription(topic, subscription);
      declared.set(k, pending);
      const declaring = pending;
      declaring.catch(() => {
        if (declared.get(k) === declaring) declared.delete(k);
      });
    }
    return pending;
  };

  return {
    ensure,
    /** every subscription of the topic any instance has declared (rejects when the store is down) */
    async names(topic: TopicRef): Promise<string[]> {
      const others = await store.smembers(namesKey(topic));
      return [DEFAULT_SUBSCRIPTION, ...others.filter((name) => name !== DEFAULT_SUBSCRIPTION)];
    },
    /**
     * Runs an operation that needs the subscription; if the broker lost it meanwhile (its queue
     * was deleted behind our back), declares it again and retries once.
     */
    async withSubscription<T>(topic: TopicRef, subscription: string, operation: () => Promise<T>): Promise<T> {
      await ensure(topic, subscription);
      try {
        return await operation();
      } catch (err) {
        if (!(err instanceof NoSubscriptionError)) throw err;
        declared.delete(key(topic, subscription));
        await ensure(topic, subscription);
        return operation();
      }
    },
  };
}
export type SubscriptionRegistry = ReturnType<typeof subscriptionRegistry>;
