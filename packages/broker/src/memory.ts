import { BrokerUnavailableError, NoSubscriptionError } from './broker.ts';
import type { Broker, Delivery, PublishOptions, TopicRef } from './broker.ts';
import { routingKey, subscriptionQueue } from './topology.ts';
import { nextWaiter, releaseWaiters, waitForDelivery, type Waiter } from './waiters.ts';

export interface MemoryBrokerOptions {
  /** total deliveries of a message before a requeue dead-letters it instead; default 10 */
  maxDeliveries?: number;
}

/** A message as it sits in a queue (ready, unacked or dead-lettered). */
export interface StoredMessage {
  body: Buffer;
  messageId: string;
  contentType: string | undefined;
  headers: Record<string, unknown>;
  /** how many times it has been delivered so far */
  deliveries: number;
}

export interface MemoryBroker extends Broker {
  /** the messages ready in a subscription's dead-letter queue (the memory counterpart of the `.dlq` queue) */
  deadLetters(topic: TopicRef, subscription: string): StoredMessage[];
}

interface MessageQueue {
  ready: StoredMessage[];
  /** by delivery token, so a stale delivery of a requeued message cannot settle its redelivery */
  unacked: Map<object, StoredMessage>;
  waiters: Waiter[];
  /** what a nack does with a message of this queue */
  returned(message: StoredMessage, requeue: boolean): void;
}

interface Queue extends MessageQueue {
  /** the subscription's dead-letter queue */
  dead: MessageQueue;
}

class InMemoryBroker implements MemoryBroker {
  private readonly maxDeliveries: number;
  /** routing key -> subscription name -> queue */
  private readonly topics = new Map<string, Map<string, Queue>>();
  private closed = false;

  constructor(options: MemoryBrokerOptions) {
    this.maxDeliveries = options.maxDeliveries ?? 10;
    if (!Number.isInteger(this.maxDeliveries) || this.maxDeliveries < 1) {
      throw new RangeError('maxDeliveries must be an integer >= 1');
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new BrokerUnavailableError('broker is closed');
  }

  private queue(topic: TopicRef, subscription: string): Queue {
    subscriptionQueue(topic, subscription); // validates the names exactly like the amqp broker
    const queue = this.topics.get(routingKey(topic))?.get(subscription);
    if (!queue) throw new NoSubscriptionError(`subscription ${subscription} of ${routingKey(topic)} does not exist`);
    return queue;
  }

  async declareSubscription(topic: TopicRef, subscription: string): Promise<void> {
    this.checkOpen();
    subscriptionQueue(topic, subscription);
    const key = routingKey(topic);
    let subs = this.topics.get(key);
    if (!subs) {
      subs = new Map();
      this.topics.set(key, subs);
    }
    if (!subs.has(subscription)) subs.set(subscription, this.newSubscriptionQueue());
  }

  private newSubscriptionQueue(): Queue {
    // like the `.dlq` queue, which has no dead-letter exchange: a nack without requeue drops the message
    const dead: MessageQueue = {
      ready: [],
      unacked: new Map(),
      waiters: [],
      returned: (message, requeue) => {
        if (requeue) this.putBack(dead, message);
      },
    };
    const queue: Queue = {
      ready: [],
      unacked: new Map(),
      waiters: [],
      dead,
      returned: (message, requeue) => {
        if (requeue && message.deliveries < this.maxDeliveries) {
          this.putBack(queue, message);
        } else {
          // a fresh copy: deliveries from the dead-letter queue are counted from 1 again, as RabbitMQ does
          dead.ready.push({ ...message, headers: { ...message.headers }, deliveries: 0 });
          this.dispatch(dead);
        }
      },
    };
    return queue;
  }

  /** back to the front, as a quorum queue redelivers returned messages first */
  private putBack(queue: MessageQueue, message: StoredMessage): void {
    queue.ready.unshift(message);
    this.dispatch(queue);
  }

  async publish(topic: TopicRef, body: Buffer, options: PublishOptions): Promise<void> {
    this.checkOpen();
    const subs = this.topics.get(routingKey(topic));
    if (!subs?.size) throw new NoSubscriptionError(`no subscription receives ${routingKey(topic)}`);
    for (const queue of subs.values()) {
      // each subscription gets its own copy, like a queue does
      queue.ready.push({
        body: Buffer.from(body),
        messageId: options.messageId,
        contentType: options.contentType,
        headers: { ...options.headers },
        deliveries: 0,
      });
      this.dispatch(queue);
    }
  }

  /** hands ready messages to waiting receive() calls */
  private dispatch(queue: MessageQueue): void {
    while (queue.waiters.length > 0 && queue.ready.length > 0) {
      const waiter = nextWaiter(queue);
      const message = queue.ready.shift();
      if (!waiter || !message) return;
      waiter.resolve(this.deliver(queue, message));
    }
  }

  private deliver(queue: MessageQueue, message: StoredMessage): Delivery {
    const token = {};
    message.deliveries++;
    queue.unacked.set(token, message);
    /** like the amqp broker: settling twice is a no-op, settling after close() is unavailable */
    const settle = async (then: () => void): Promise<void> => {
      if (!queue.unacked.delete(token)) return;
      if (this.closed) throw new BrokerUnavailableError('broker is closed');
      then();
    };
    return {
      body: message.body,
      messageId: message.messageId,
      contentType: message.contentType,
      headers: { ...message.headers },
      deliveryCount: message.deliveries,
      ack: () => settle(() => undefined),
      nack: (requeue) => settle(() => queue.returned(message, requeue)),
    };
  }

  async receive(topic: TopicRef, subscription: string, waitMs: number, signal?: AbortSignal): Promise<Delivery | null> {
    this.checkOpen();
    return this.take(this.queue(topic, subscription), waitMs, signal);
  }

  async receiveDeadLetter(topic: TopicRef, subscription: string, waitMs: number, signal?: AbortSignal): Promise<Delivery | null> {
    this.checkOpen();
    return this.take(this.queue(topic, subscription).dead, waitMs, signal);
  }

  private take(queue: MessageQueue, waitMs: number, signal: AbortSignal | undefined): Promise<Delivery | null> {
    if (signal?.aborted) return Promise.resolve(null);
    const message = queue.ready.shift();
    if (message) return Promise.resolve(this.deliver(queue, message));
    if (waitMs <= 0) return Promise.resolve(null);
    return waitForDelivery(queue, waitMs, signal);
  }

  async depth(topic: TopicRef, subscription: string): Promise<number> {
    this.checkOpen();
    return this.queue(topic, subscription).ready.length;
  }

  async ping(): Promise<void> {
    this.checkOpen();
  }

  deadLetters(topic: TopicRef, subscription: string): StoredMessage[] {
    return [...this.queue(topic, subscription).dead.ready];
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const subs of this.topics.values()) {
      for (const queue of [...subs.values()].flatMap((sub) => [sub, sub.dead])) releaseWaiters(queue);
    }
  }
}

/** The embedded broker for when AMQP_URL is not configured; same semantics as the RabbitMQ broker. */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): MemoryBroker {
  return new InMemoryBroker(options);
}
