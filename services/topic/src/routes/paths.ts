import { z } from 'zod';
import { BATCH_ID, SubscriptionName } from '@keyway/contracts';
import { TopicPath } from '../auth/sas-guard.ts';

/** Azure Service Bus REST paths (design.md, HTTP surface). */
export const TOPIC = '/tenants/:tenant/topics/:topic';
export const SUBSCRIPTION = `${TOPIC}/subscriptions/:subscription`;
export const MESSAGE = `${SUBSCRIPTION}/messages/:id/:lockToken`;
/**
 * Azure Service Bus addresses a subscription's dead-letter queue as its sub-entity `$DeadLetterQueue`
 * (matched case-insensitively, like every route; `$` is sent as is, not percent-encoded).
 */
export const DEAD_LETTER_QUEUE = `${SUBSCRIPTION}/$deadletterqueue`;
export const DEAD_LETTER_MESSAGE = `${DEAD_LETTER_QUEUE}/messages/:id/:lockToken`;

export const SubscriptionPath = TopicPath.extend({ subscription: SubscriptionName });
export const MessagePath = SubscriptionPath.extend({
  id: z.string().regex(BATCH_ID, 'must be a batch id'),
  lockToken: z.uuid('must be a lock token'),
});
