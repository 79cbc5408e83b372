import type { Channel, Options } from 'amqplib';
import type { StreamRetention, TopicRef } from './broker.ts';

/**
 * The whole RabbitMQ topology in one place. Tenant, topic and subscription names are [a-z0-9-],
 * so they are safe inside routing keys (no '.', '*' or '#') and queue names.
 */
export const TOPIC_EXCHANGE = 'keyway.topics';
const DEAD_LETTER_EXCHANGE = 'keyway.dlx';

export type QueueType = 'quorum' | 'classic';

/** When the topic service published a batch (ms since the epoch): replay by time reads it (issue 16). */
export const PUBLISHED_AT_HEADER = 'x-keyway-published-at';
/** When a batch's time to live ends (ms since the epoch), carried across counted requeues and replayed copies (issue 16). */
export const EXPIRES_AT_HEADER = 'x-keyway-expires-at';
/** On a dead letter we dead-lettered ourselves: why (a reason of dead-letters.ts or a receiver's own), and in words (issue 16). */
export const DEAD_LETTER_REASON_HEADER = 'x-keyway-dead-letter-reason';
export const DEAD_LETTER_DESCRIPTION_HEADER = 'x-keyway-dead-letter-description';
/** Ours (counts, reasons, publish time, expiry): the broker's bookkeeping, never shown to a receiver. */
export const OWN_HEADER = /^x-keyway-/;

/** Marks a message written straight into a replay stream to end one replay; every reader skips it. */
export const REPLAY_MARKER_HEADER = 'x-keyway-replay-marker';

/** The headers of a stored message without our own (x-keyway-*): what the publisher gave. */
export function publisherHeaders(headers: Record<string, unknown> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers ?? {}).filter(([name]) => !OWN_HEADER.test(name)));
}

/** The replay stream's retention when the caller names none (the topic service's defaults, too). */
export const DEFAULT_STREAM_RETENTION: StreamRetention = { maxAgeSec: 7 * 24 * 3600, maxBytes: 5 * 1024 ** 3 };

/**
 * RabbitMQ drops a stream's data a whole segment at a time (default 500 MB), so a small stream would
 * keep everything regardless of its age or size limit; segments of at most 16 MiB (and at most a
 * quarter of the size limit) let retention act on small streams too.
 */
const STREAM_SEGMENT_BYTES = 16 * 1024 ** 2;

/** How long an unused subscription's queues live by default: a week without a consumer or a declaration. */
export const DEFAULT_SUBSCRIPTION_EXPIRES_MS = 7 * 24 * 3600 * 1000;

const NAME = /^[a-z0-9-]+$/;

/**
 * Checked here because a '*' or '#' in a binding key would be a wildcard and a '.' would shift
 * the name segments: either could let one tenant's subscription receive another tenant's messages.
 */
function checkName(kind: string, name: string): string {
  if (!NAME.test(name)) throw new TypeError(`invalid ${kind} name ${JSON.stringify(name)}: expected [a-z0-9-]+`);
  return name;
}

export function routingKey(topic: TopicRef): string {
  return `${checkName('tenant', topic.tenant)}.${checkName('topic', topic.topic)}`;
}

export function subscriptionQueue(topic: TopicRef, subscription: string): string {
  return `keyway.sub.${routingKey(topic)}.${checkName('subscription', subscription)}`;
}

export function deadLetterQueue(queue: string): string {
  return `${queue}.dlq`;
}

/** What bounds a subscription's two queues, so no subscription can hoard without end (issue 9). */
export interface QueueBounds {
  /** RabbitMQ `x-expires`: a queue nobody consumed from, received from or declared for this long is deleted */
  expiresMs: number;
  /** RabbitMQ `x-max-length` with `x-overflow: drop-head`: beyond it the oldest message is dead-lettered (from the dead-letter queue: dropped) */
  maxLength: number | undefined;
}

export function streamQueue(topic: TopicRef): string {
  return `keyway.stream.${routingKey(topic)}`;
}

/** Queue arguments that only bound a queue; a queue declared before them exists with other values. */
const BOUND_ARGUMENTS = ['x-expires', 'x-max-length', 'x-overflow'] as const;

/** A replay stream's retention: declared with another (tier changed, other settings), the stream keeps its own. */
const RETENTION_ARGUMENTS = ['x-max-age', 'x-max-length-bytes', 'x-stream-max-segment-size-bytes'] as const;

/**
 * Arguments a queue declared by an older version may hold with other values (or hold at all):
 * the bounds, `x-delivery-limit`, which quorum queues had before deliveries were counted by us
 * (issue 12), and a stream's retention. RabbitMQ cannot change a queue's arguments, so such a queue is
 * kept as it is.
 */
export const KEPT_ARGUMENTS = [...BOUND_ARGUMENTS, 'x-delivery-limit', ...RETENTION_ARGUMENTS] as const;

function boundArgs(bounds: QueueBounds): Record<string, unknown> {
  const args: Record<string, unknown> = { 'x-expires': bounds.expiresMs };
  // drop-head rather than reject-publish: a full subscription must not refuse (nack) the publish
  // that its topic's other subscriptions take
  if (bounds.maxLength !== undefined) Object.assign(args, { 'x-max-length': bounds.maxLength, 'x-overflow': 'drop-head' });
  return args;
}

/**
 * Arguments of a subscription queue. No `x-delivery-limit` on quorum queues: RabbitMQ counts every
 * return in it, also those of a closed channel or connection, so a backlog prefetched by an instance
 * that crashed or lost its connection ten times was dead-lettered unseen (issue 12). The broker counts
 * hand-outs to clients itself, for both queue types (see amqp.ts).
 */
function subscriptionQueueArgs(queue: string, queueType: QueueType, bounds: QueueBounds): Options.AssertQueue {
  return {
    durable: true,
    arguments: {
      'x-queue-type': queueType,
      'x-dead-letter-exchange': DEAD_LETTER_EXCHANGE,
      'x-dead-letter-routing-key': queue,
      ...boundArgs(bounds),
    },
  };
}

function deadLetterQueueArgs(queueType: QueueType, bounds: QueueBounds): Options.AssertQueue {
  return { durable: true, arguments: { 'x-queue-type': queueType, ...boundArgs(bounds) } };
}

/** Arguments of a topic's replay stream; RabbitMQ enforces the retention (issue 16). */
function streamArgs(retention: StreamRetention): Options.AssertQueue {
  return {
    durable: true,
    arguments: {
      'x-queue-type': 'stream',
      'x-max-age': `${retention.maxAgeSec}s`,
      'x-max-length-bytes': retention.maxBytes,
      'x-stream-max-segment-size-bytes': Math.max(1, Math.min(STREAM_SEGMENT_BYTES, Math.floor(retention.maxBytes / 4))),
    },
  };
}

/** Exchanges every connection needs before publishing: publishing to a missing exchange would close the channel. */
export async function declareExchanges(channel: Channel): Promise<void> {
  await channel.assertExchange(TOPIC_EXCHANGE, 'topic', { durable: true });
  await channel.assertExchange(DEAD_LETTER_EXCHANGE, 'direct', { durable: true });
}

/**
 * Idempotent: the topic's replay stream, the subscription queue bound to its topic, and its
 * dead-letter queue. Each queue is declared through `assertQueue`, which may run on a channel of its
 * own (a refused declaration closes its channel).
 */
export async function declareSubscriptionTopology(
  channel: Channel,
  topic: TopicRef,
  subscription: string,
  assertQueue: (queue: string, options: Options.AssertQueue) => Promise<void>,
  settings: { queueType: QueueType; bounds: QueueBounds; retention: StreamRetention },
): Promise<void> {
  const queue = subscriptionQueue(topic, subscription);
  const dlq = deadLetterQueue(queue);
  const stream = streamQueue(topic);
  await declareExchanges(channel);
  // the stream first: whatever reaches the subscription from now on is in the stream too
  await assertQueue(stream, streamArgs(settings.retention));
  await channel.bindQueue(stream, TOPIC_EXCHANGE, routingKey(topic));
  // the dead-letter queue first, so nothing can be dead-lettered before it is bound
  await assertQueue(dlq, deadLetterQueueArgs(settings.queueType, settings.bounds));
  await channel.bindQueue(dlq, DEAD_LETTER_EXCHANGE, queue);
  await assertQueue(queue, subscriptionQueueArgs(queue, settings.queueType, settings.bounds));
  await channel.bindQueue(queue, TOPIC_EXCHANGE, routingKey(topic));
}
