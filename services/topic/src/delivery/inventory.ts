import { DEFAULT_SUBSCRIPTION, type FeedDelivery, type SubscriptionNames } from '@keyway/contracts';
import type { TopicRef } from '@keyway/broker';
import type { EntitlementClient } from '@keyway/clients';
import { OAuthError, TemporarilyUnavailable } from '@keyway/kit';
import { forgetOnFailure, setBounded } from '../bounded-cache.ts';
import { RETRY_AFTER_SEC } from './broker-errors.ts';

/**
 * The names of a feed's listed subscriptions (the operator's inventory) and the delivery policy of
 * the tenant's tier for the feed; rejects when it cannot be asked.
 */
export type SubscriptionSource = (tenant: string, topic: string) => Promise<SubscriptionNames>;

/** The production source: the entitlement service's internal inventory API (mTLS with this service's certificate). */
export function entitlementSubscriptions(entitlement: Pick<EntitlementClient, 'subscriptionNames'>): SubscriptionSource {
  return (tenant, topic) => entitlement.subscriptionNames(tenant, topic);
}

/** 404 for a subscription the inventory does not list: nothing was declared for it. */
class SubscriptionNotFound extends OAuthError {
  constructor(detail: string) {
    super(404, 'subscription_not_found', 'the subscription does not exist: an operator lists it for the feed before it can be received from', detail);
  }
}

/** Topic names are caller-chosen: bound the cache so made-up names cannot grow it without end. */
const MAX_TOPICS = 10_000;

/** One answer of the inventory: the feed's listed names and its tier's delivery policy. */
interface FeedEntry {
  names: Set<string>;
  delivery: FeedDelivery;
}

/**
 * Which subscriptions may be received from (issue 9): `default`, and those the operator listed in
 * the entitlement service; and, in the same answer, the delivery policy of the tenant's tier for the
 * feed (issue 16). Each answer is reused for ttlMs, so a subscription listed or dropped, or a tier's
 * policy changed, takes effect here within ttlMs, and made-up names cost one lookup per feed per
 * ttlMs, not one per name. A failed lookup is not cached and answers 503 (fail closed).
 */
export function subscriptionInventory(source: SubscriptionSource, options: { ttlMs: number; now: () => number }) {
  const { ttlMs, now } = options;
  const entries = new Map<string, { at: number; feed: Promise<FeedEntry> }>();

  const lookup = async (topic: TopicRef, fresh: boolean): Promise<FeedEntry> => {
    const k = `${topic.tenant}/${topic.topic}`;
    let entry = entries.get(k);
    if (!entry || fresh || now() - entry.at >= ttlMs) {
      const feed = source(topic.tenant, topic.topic).then((answer) => ({ names: new Set(answer.subscriptions), delivery: answer.delivery ?? {} }));
      entry = { at: now(), feed };
      setBounded(entries, k, entry, MAX_TOPICS);
      forgetOnFailure(entries, k, entry, feed);
    }
    try {
      return await entry.feed;
    } catch (err) {
      throw new TemporarilyUnavailable('the subscription cannot be looked up right now, retry later', `subscription inventory: ${String(err)}`, {
        'Retry-After': String(RETRY_AFTER_SEC),
      });
    }
  };

  return {
    /** resolves when the subscription exists; `fresh` asks the inventory again rather than reuse an answer */
    async require(topic: TopicRef, subscription: string, { fresh = false } = {}): Promise<void> {
      if (subscription === DEFAULT_SUBSCRIPTION) return;
      const { names } = await lookup(topic, fresh);
      if (!names.has(subscription)) throw new SubscriptionNotFound(`${topic.tenant}/${topic.topic}/${subscription} is not listed`);
    },
    /** the tier's delivery policy for the feed (values it leaves out: the service's defaults); 503 when it cannot be looked up */
    delivery: async (topic: TopicRef): Promise<FeedDelivery> => (await lookup(topic, false)).delivery,
  };
}
export type SubscriptionInventory = ReturnType<typeof subscriptionInventory>;
