/**
 * The message broker interface behind the topic service. Two implementations: RabbitMQ (amqplib)
 * and an embedded in-memory broker used when AMQP_URL is not configured. Both give the same
 * at-least-once semantics: a delivery that is not acked is redelivered.
 */
export interface TopicRef {
  tenant: string;
  topic: string;
}

export interface PublishOptions {
  /** the batch id; becomes the AMQP message-id */
  messageId: string;
  contentType?: string;
  headers?: Record<string, string | number | boolean>;
}

export interface Delivery {
  body: Buffer;
  messageId: string;
  contentType: string | undefined;
  headers: Record<string, unknown>;
  /** 1 on first delivery, 2 on the first redelivery, ... */
  deliveryCount: number;
  /** settle: remove the message for good */
  ack(): Promise<void>;
  /** settle: return the message (requeue = true) or dead-letter/drop it (requeue = false) */
  nack(requeue: boolean): Promise<void>;
}

export interface Broker {
  /** idempotent: declares the topic and a durable subscription queue bound to it (plus its dead-letter queue) */
  declareSubscription(topic: TopicRef, subscription: string): Promise<void>;
  /**
   * Resolves only once the broker has confirmed the message (publisher confirms) to every
   * subscription of the topic. Rejects with NoSubscriptionError when the topic has no subscription
   * (the message would otherwise be dropped), with BrokerUnavailableError when not connected.
   */
  publish(topic: TopicRef, body: Buffer, options: PublishOptions): Promise<void>;
  /** waits up to waitMs for one message of the subscription; null when none arrived */
  receive(topic: TopicRef, subscription: string, waitMs: number): Promise<Delivery | null>;
  /** messages ready in the subscription's queue (not counting unacked ones) */
  depth(topic: TopicRef, subscription: string): Promise<number>;
  /** throws BrokerUnavailableError when not connected */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
  readonly code = 'ERR_BROKER_UNAVAILABLE';
}

export class NoSubscriptionError extends Error {
  override readonly name = 'NoSubscriptionError';
  readonly code = 'ERR_NO_SUBSCRIPTION';
}
