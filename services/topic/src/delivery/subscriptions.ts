import { NoSubscriptionError, type Broker, type TopicRef } from '@keyway/broker';
import { DEFAULT_SUBSCRIPTION } from '@keyway/contracts';
import type { Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import type { SubscriptionQueue } from '../metrics.ts';
import type { SubscriptionInventory } from './inventory.ts';
import type { FeedPolicies } from './policy.ts';

export { DEFAULT_SUBSCRIPTION };

/**
 * How often a subscription that is received from is declared again. Declaring restarts the queues'
 * x-expires clock, which keeps the dead-letter queue (which nobody may consume from for weeks) alive
 * as long as its subscription is used; the subscription queue's own consumers keep it alive anyway.
 */
const REDECLARE_MS = 3600_000;

/**
 * Only subscriptions the inventory lists (and `default`) are declared: asking a made-up name is 404
 * before any queue exists (issue 9). Declarations are idempotent but cost a broker round trip, so
 * each subscription is declared once per process, and again after REDECLARE_MS when received from.
 * A failed declaration is forgotten so the next request tries again.
 *
 * Every topic-service instance checks the queue depth of every subscription of a topic before a
 * publish, including subscriptions only another instance has seen, so the names are recorded in the
 * shared store. The write is not awaited (receiving does not depend on the store) and is tried
 * again on the next request for the subscription when it failed.
 */
export function subscriptionRegistry(broker: Broker, store: Store, logger: Logger, inventory: SubscriptionInventory, policies: FeedPolicies, now: () => number = Date.now) {
  const declared = new Map<string, { at: number; pending: Promise<void>; queue: SubscriptionQueue }>();
  const recorded = new Set<string>();
  const key = (topic: TopicRef, subscription: string) => `${topic.tenant}/${topic.topic}/${subscription}`;
  // tenant and topic names are slugs, so ':' cannot be part of either
  const namesKey = (topic: TopicRef) => `subscriptions:${topic.tenant}:${topic.topic}`;
  /** declares the subscription with the replay stream its feed's policy keeps (issue 16) */
  const declareAtBroker = async (topic: TopicRef, subscription: string): Promise<void> => {
    const policy = await policies.of(topic);
    await broker.declareSubscription(topic, subscription, { maxAgeSec: policy.retentionSec, maxBytes: policy.retentionBytes });
  };

  const record = (topic: TopicRef, subscription: string, k: string): void => {
    if (subscription === DEFAULT_SUBSCRIPTION || recorded.has(k)) return;
    recorded.add(k);
    store.sadd(namesKey(topic), subscription).catch((err: unknown) => {
      recorded.delete(k);
      logger.warn('subscription.record_failed', { tenant: topic.tenant, topic: topic.topic, subscription, err });
    });
  };

  /**
   * 404 subscription_not_found unless listed, then declares it (once; again after REDECLARE_MS when
   * `renew`). Publishing does not renew: a `default` subscription nobody receives from may expire,
   * and is declared again by the next publish that finds it gone.
   */
  const ensure = async (topic: TopicRef, subscription: string, { renew = true, fresh = false } = {}): Promise<void> => {
    await inventory.require(topic, subscription, { fresh });
    const k = key(topic, subscription);
    record(topic, subscription, k);
    let entry = declared.get(k);
    if (!entry || (renew && now() - entry.at >= REDECLARE_MS)) {
      const next = { at: now(), pending: declareAtBroker(topic, subscription), queue: { topic, subscription } };
      declared.set(k, next);
      next.pending.catch(() => {
        if (declared.get(k) === next) declared.delete(k);
      });
      entry = next;
    }
    return entry.pending;
  };

  return {
    ensure,
    /**
     * Declares a subscription at the broker now, whatever this process remembers (the entitlement
     * service, listing it, asks: issue 12, batches published before the first receive were lost), and
     * records its name for the depth check; rejects when either fails, so the listing fails closed.
     * Only what the inventory lists now (asked afresh), as for a receive: 404 otherwise.
     */
    async declare(topic: TopicRef, subscription: string): Promise<void> {
      await inventory.require(topic, subscription, { fresh: true });
      const k = key(topic, subscription);
      const next = { at: now(), pending: declareAtBroker(topic, subscription), queue: { topic, subscription } };
      declared.set(k, next);
      try {
        await next.pending;
      } catch (err) {
        if (declared.get(k) === next) declared.delete(k);
        throw err;
      }
      if (subscription !== DEFAULT_SUBSCRIPTION) {
        await store.sadd(namesKey(topic), subscription);
        recorded.add(k);
      }
    },
    /** forgets what this process declared for the topic (its stream was deleted): the next use declares again, re-creating the stream */
    forget(topic: TopicRef): void {
      for (const [k, { queue }] of declared) if (queue.topic.tenant === topic.tenant && queue.topic.topic === topic.topic) declared.delete(k);
    },
    /** the subscription queues this process declared (or is declaring): the depth gauge's queues */
    *queues(): Iterable<SubscriptionQueue> {
      for (const { queue } of declared.values()) yield queue;
    },
    /** every subscription of the topic any instance has declared (rejects when the store is down) */
    async names(topic: TopicRef): Promise<string[]> {
      const others = await store.smembers(namesKey(topic));
      return [DEFAULT_SUBSCRIPTION, ...others.filter((name) => name !== DEFAULT_SUBSCRIPTION)];
    },
    /**
     * Runs an operation that needs the subscription; if the broker lost it meanwhile (its queue
     * expired, or was deleted with its inventory entry), asks the inventory afresh, declares it again
     * and retries once.
     */
    async withSubscription<T>(topic: TopicRef, subscription: string, operation: () => Promise<T>, options: { renew?: boolean } = {}): Promise<T> {
      await ensure(topic, subscription, options);
      try {
        return await operation();
      } catch (err) {
        if (!(err instanceof NoSubscriptionError)) throw err;
        declared.delete(key(topic, subscription));
        await ensure(topic, subscription, { ...options, fresh: true });
        return operation();
      }
    },
  };
}
export type SubscriptionRegistry = ReturnType<typeof subscriptionRegistry>;
