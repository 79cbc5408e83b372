import { createAmqpBroker } from './amqp.ts';
import type { AmqpBrokerOptions } from './amqp.ts';
import type { Broker } from './broker.ts';
import { createMemoryBroker } from './memory.ts';

export * from './broker.ts';
export { createAmqpBroker } from './amqp.ts';
export { createMemoryBroker } from './memory.ts';
export type { MemoryBroker } from './memory.ts';
export { deadLetterQueue, streamQueue, subscriptionQueue } from './topology.ts';
export { amqpUrls, connectFirst, redactedUrl } from './urls.ts';
export type { QueueType } from './topology.ts';

export interface CreateBrokerOptions extends Omit<AmqpBrokerOptions, 'url'> {
  /** when set, the broker is RabbitMQ; otherwise the embedded in-memory broker */
  amqpUrl?: string | undefined;
}

export function createBroker({ amqpUrl, ...options }: CreateBrokerOptions): Promise<Broker> {
  if (amqpUrl) return createAmqpBroker({ url: amqpUrl, ...options });
  const { maxDeliveries, subscriptionExpiresMs, maxQueueLength, replayStallMs } = options;
  return Promise.resolve(createMemoryBroker({ maxDeliveries, subscriptionExpiresMs, maxQueueLength, replayStallMs }));
}
export { consumeEvents } from './consumer.ts';
export { outbox, timeSortableId } from './outbox.ts';
