import { DEFAULT_SUBSCRIPTION } from '@keyway/contracts';
import type { TopicRef } from '@keyway/broker';
import type { EntitlementClient } from '@keyway/clients';
import { OAuthError, TemporarilyUnavailable } from '@keyway/kit';
import { forgetOnFailure, setBounded } from '../bounded-cache.ts';
import { RETRY_AFTER_SEC } from './broker-errors.ts';

/** The names of a feed's listed subscriptions (the operator's inventory); rejects when it cannot be asked. */
export type SubscriptionSource = (tenant: string, topic: string) => Promise<string[]>;

/** The production source: the entitlement service's internal inventory API (mTLS with this service's certificate). */
export function entitlementSubscriptions(entitlement: Pick<EntitlementClient, 'subscriptionNames'>): SubscriptionSource {
  return async (tenant, topic) => (await entitlement.subscriptionNames(tenant, topic)).subscriptions;
}

/** 404 for a subscription the inventory does not list: nothing was declared for it. */
class SubscriptionNotFound extends OAuthError {
  constructor(detail: string) {
    super(404, 'subscription_not_found', 'the subscription does not exist: an operator lists it for the feed before it can be received from', detail);
  }
}

/** Topic names are caller-chosen: bound the cache so made-up names cannot grow it without end. */
const MAX_TOPICS = 10_000;

/**
 * Which subscriptions may be received from (issue 9): `default`, and those the operator listed in
 * the entitlement service. Each answer (the feed's whole list) is reused for ttlMs, so a subscription
 * listed or dropped takes effect here within ttlMs, and made-up names cost one lookup per feed per
 * ttlMs, not one per name. A failed lookup is not cached and answers 503 (fail closed).
 */
export function subscriptionInventory(source: SubscriptionSource, options: { ttlMs: number; now: () => number }) {
  const { ttlMs, now } = options;
  const entries = new Map<string, { at: number; names: Promise<Set<string>> }>();

  const lookup = (topic: TopicRef, fresh: boolean): Promise<Set<string>> => {
    const k = `${topic.tenant}/${topic.topic}`;
    const known = entries.get(k);
    if (known && !fresh && now() - known.at < ttlMs) return known.names;
    const entry = { at: now(), names: source(topic.tenant, topic.topic).then((names) => new Set(names)) };
    setBounded(entries, k, entry, MAX_TOPICS);
    forgetOnFailure(entries, k, entry, entry.names);
    return entry.names;
  };

  return {
    /** resolves when the subscription exists; `fresh` asks the inventory again rather than reuse an answer */
    async require(topic: TopicRef, subscription: string, { fresh = false } = {}): Promise<void> {
      if (subscription === DEFAULT_SUBSCRIPTION) return;
      let names: Set<string>;
      try {
        names = await lookup(topic, fresh);
      } catch (err) {
        throw new TemporarilyUnavailable('the subscription cannot be looked up right now, retry later', `subscription inventory: ${String(err)}`, {
          'Retry-After': String(RETRY_AFTER_SEC),
        });
      }
      if (!names.has(subscription)) throw new SubscriptionNotFound(`${topic.tenant}/${topic.topic}/${subscription} is not listed`);
    },
  };
}
export type SubscriptionInventory = ReturnType<typeof subscriptionInventory>;
