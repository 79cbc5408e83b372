import type { Channel, Options } from 'amqplib';
import type { TopicRef } from './broker.ts';

/**
 * The whole RabbitMQ topology in one place. Tenant, topic and subscription names are [a-z0-9-],
 * so they are safe inside routing keys (no '.', '*' or '#') and queue names.
 */
export const TOPIC_EXCHANGE = 'keyway.topics';
export const DEAD_LETTER_EXCHANGE = 'keyway.dlx';

export type QueueType = 'quorum' | 'classic';

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

/**
 * Arguments of a subscription queue. `maxDeliveries` is the total number of deliveries a message
 * gets; a quorum queue dead-letters once a message was *returned* more than x-delivery-limit
 * times, i.e. after limit + 1 deliveries, hence the - 1. Classic queues have no delivery limit,
 * the broker emulates it (see amqp.ts).
 */
function subscriptionQueueArgs(queue: string, queueType: QueueType, maxDeliveries: number): Options.AssertQueue {
  const args: Record<string, unknown> = {
    'x-queue-type': queueType,
    'x-dead-letter-exchange': DEAD_LETTER_EXCHANGE,
    'x-dead-letter-routing-key': queue,
  };
  if (queueType === 'quorum') args['x-delivery-limit'] = maxDeliveries - 1;
  return { durable: true, arguments: args };
}

function deadLetterQueueArgs(queueType: QueueType): Options.AssertQueue {
  return { durable: true, arguments: { 'x-queue-type': queueType } };
}

/** Exchanges every connection needs before publishing: publishing to a missing exchange would close the channel. */
export async function declareExchanges(channel: Channel): Promise<void> {
  await channel.assertExchange(TOPIC_EXCHANGE, 'topic', { durable: true });
  await channel.assertExchange(DEAD_LETTER_EXCHANGE, 'direct', { durable: true });
}

/** Idempotent: the subscription queue bound to its topic, and its dead-letter queue. */
export async function declareSubscriptionTopology(
  channel: Channel,
  topic: TopicRef,
  subscription: string,
  queueType: QueueType,
  maxDeliveries: number,
): Promise<void> {
  const queue = subscriptionQueue(topic, subscription);
  const dlq = deadLetterQueue(queue);
  await declareExchanges(channel);
  // the dead-letter queue first, so nothing can be dead-lettered before it is bound
  await channel.assertQueue(dlq, deadLetterQueueArgs(queueType));
  await channel.bindQueue(dlq, DEAD_LETTER_EXCHANGE, queue);
  await channel.assertQueue(queue, subscriptionQueueArgs(queue, queueType, maxDeliveries));
  await channel.bindQueue(queue, TOPIC_EXCHANGE, routingKey(topic));
}
