import { createAmqpBroker } from './amqp.ts';
import type { AmqpBrokerOptions } from './amqp.ts';
import type { Broker } from './broker.ts';
import { createMemoryBroker } from './memory.ts';

export * from './broker.ts';
export { createAmqpBroker } from './amqp.ts';
export type { AmqpBrokerOptions } from './amqp.ts';
export { createMemoryBroker } from './memory.ts';
export type { MemoryBroker, MemoryBrokerOptions, StoredMessage } from './memory.ts';
export { DEAD_LETTER_EXCHANGE, DEFAULT_SUBSCRIPTION_EXPIRES_MS, TOPIC_EXCHANGE, deadLetterQueue, routingKey, subscriptionQueue } from './topology.ts';
export type { QueueBounds, QueueType } from './topology.ts';

export interface CreateBrokerOptions extends Omit<AmqpBrokerOptions, 'url'> {
  /** when set, the broker is RabbitMQ; otherwise the embedded in-memory broker */
  amqpUrl?: string | undefined;
}

export function createBroker({ amqpUrl, ...options }: CreateBrokerOptions): Promise<Broker> {
  if (amqpUrl) return createAmqpBroker({ url: amqpUrl, ...options });
  const { maxDeliveries, subscriptionExpiresMs, maxQueueLength } = options;
  return Promise.resolve(createMemoryBroker({ maxDeliveries, subscriptionExpiresMs, maxQueueLength }));
}
export { consume, consumeEvents, type ConsumerOptions, type EventSchema } from './consumer.ts';
export { outbox, timeSortableId, type Outbox, type OutboxOptions, type OutboxStore } from './outbox.ts';
