import { NoSubscriptionError, type Broker, type TopicRef } from '@keyway/broker';

export const DEFAULT_SUBSCRIPTION = 'default';

/**
 * Declarations are idempotent but cost a broker round trip, so each subscription is declared once
 * per process. A failed declaration is forgotten so the next request tries again.
 */
export function subscriptionRegistry(broker: Broker) {
  const declared = new Map<string, Promise<void>>();
  const key = (topic: TopicRef, subscription: string) => `${topic.tenant}/${topic.topic}/${subscription}`;

  const ensure = (topic: TopicRef, subscription: string): Promise<void> => {
    const k = key(topic, subscription);
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
