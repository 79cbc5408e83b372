import type { TopicRef } from '@keyway/broker';
import type { FeedDelivery } from '@keyway/contracts';
import type { TopicConfig } from '../config.ts';

/** How a feed's batches are kept and delivered (issue 16): the topic service's defaults, or those of the tenant's tier. */
export interface FeedPolicy {
  /** how long the topic's replay stream keeps a batch (RabbitMQ x-max-age) */
  retentionSec: number;
  /** the most the topic's replay stream holds (x-max-length-bytes); the oldest segments go first */
  retentionBytes: number;
  /** a batch not completed within this long after its publish is dead-lettered (TTLExpiredException); 0 = never */
  messageTtlSec: number;
  /** a batch id published again within this long is answered as accepted and not delivered twice; 0 = no duplicate detection */
  duplicateWindowSec: number;
}

/** Each feed's policy; rejects (503) when the tier's policy cannot be looked up. */
export interface FeedPolicies {
  of(topic: TopicRef): Promise<FeedPolicy>;
}

export const defaultFeedPolicy = (config: Pick<TopicConfig, 'REPLAY_RETENTION_SEC' | 'REPLAY_MAX_BYTES' | 'MESSAGE_TTL_SEC' | 'DUPLICATE_WINDOW_SEC'>): FeedPolicy => ({
  retentionSec: config.REPLAY_RETENTION_SEC,
  retentionBytes: config.REPLAY_MAX_BYTES,
  messageTtlSec: config.MESSAGE_TTL_SEC,
  duplicateWindowSec: config.DUPLICATE_WINDOW_SEC,
});

/**
 * Each feed's policy: what the tenant's tier sets for it (the entitlement service's answer, which the
 * subscription inventory keeps along with the feed's subscription names: one lookup for both), each
 * value it leaves out taken from the service's defaults. A failed lookup rejects with 503.
 */
export function tierFeedPolicies(inventory: { delivery(topic: TopicRef): Promise<FeedDelivery> }, defaults: FeedPolicy): FeedPolicies {
  return {
    async of(topic) {
      const tier = await inventory.delivery(topic);
      return {
        retentionSec: tier.retention_sec ?? defaults.retentionSec,
        retentionBytes: tier.retention_bytes ?? defaults.retentionBytes,
        messageTtlSec: tier.message_ttl_sec ?? defaults.messageTtlSec,
        duplicateWindowSec: tier.duplicate_window_sec ?? defaults.duplicateWindowSec,
      };
    },
  };
}
