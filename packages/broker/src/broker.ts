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
  /** idempotent: deletes the subscription's queue and its dead-letter queue, with what they hold */
  deleteSubscription(topic: TopicRef, subscription: string): Promise<void>;
  /**
   * Resolves only once the broker has confirmed the message (publisher confirms) to every
   * subscription of the topic. Rejects with NoSubscriptionError when the topic has no subscription
   * (the message would otherwise be dropped), with BrokerUnavailableError when not connected.
   */
  publish(topic: TopicRef, body: Buffer, options: PublishOptions): Promise<void>;
  /**
   * Waits up to waitMs for one message of the subscription; null when none arrived, or at once when
   * `signal` aborts (the wait ends without taking a message, so none is delivered to nobody).
   */
  receive(topic: TopicRef, subscription: string, waitMs: number, signal?: AbortSignal): Promise<Delivery | null>;
  /**
   * Like receive, from the subscription's dead-letter queue (messages nacked without requeue or
   * delivered maxDeliveries times). There is no dead-letter queue behind it: nack(true) returns the
   * message to the dead-letter queue however often it was delivered, nack(false) drops it.
   * deliveryCount counts deliveries from the dead-letter queue.
   */
  receiveDeadLetter(topic: TopicRef, subscription: string, waitMs: number, signal?: AbortSignal): Promise<Delivery | null>;
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
