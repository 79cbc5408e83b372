import { setImmediate as yieldToOthers } from 'node:timers/promises';
import { BrokerUnavailableError, DEFAULT_REPLAY_STALL_MS, NoSubscriptionError, replayBatch, waitForRoom } from './broker.ts';
import type { Broker, Delivery, PeekedMessage, PublishOptions, ReplayOptions, ReplayResult, ReplayStart, StreamRetention, TopicRef } from './broker.ts';
import { checkedReason, checkMax, expiresAtOf, expiresAtOfHeaders, maxDeliveryCountExceeded, maxQueueLengthExceeded, rejected, ttlExpired, type DeadLetterReason } from './dead-letters.ts';
import { DEFAULT_STREAM_RETENTION, DEFAULT_SUBSCRIPTION_EXPIRES_MS, EXPIRES_AT_HEADER, PUBLISHED_AT_HEADER, publisherHeaders, routingKey, subscriptionQueue } from './topology.ts';
import { nextWaiter, releaseWaiters, waitForDelivery, type Waiter } from './waiters.ts';

export interface MemoryBrokerOptions {
  /** deliveries of a message (see Delivery.deliveryCount) before nack(true) dead-letters it instead of requeueing it; default 10 */
  maxDeliveries?: number;
  /** like RabbitMQ's `x-expires`: a queue without waiting or unsettled receives, nor a declaration, for this long is deleted; default 7 days */
  subscriptionExpiresMs?: number;
  /** like RabbitMQ's `x-max-length` with `drop-head`: the oldest ready message beyond it is dead-lettered (from a dead-letter queue: dropped) */
  maxQueueLength?: number;
  /** a replay waiting this long for room in a bounded subscription queue gives up (ReplayStalledError); default 10 min */
  replayStallMs?: number;
}

/** A message as it sits in a queue (ready, unacked or dead-lettered). */
interface StoredMessage {
  body: Buffer;
  messageId: string;
  contentType: string | undefined;
  headers: Record<string, unknown>;
  /** deliveries that ended in nack(true) so far: the next one shows deliveryCount deliveries + 1 */
  deliveries: number;
  /** on a dead letter: why (the end of its time to live, as on RabbitMQ, is a header: EXPIRES_AT_HEADER) */
  why?: DeadLetterReason;
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
  /** what a nack does with a message of this queue, delivered for the `count`-th time */
  returned(message: StoredMessage, requeue: boolean, count: number): void;
  /** what becomes of the oldest ready message when the queue is over its length */
  overflowed(message: StoredMessage): void;
  /** moves a message to the dead-letter queue; absent on a dead-letter queue, which has none, nor times to live */
  deadLetter: ((message: StoredMessage, why: DeadLetterReason) => void) | undefined;
  /** the clock of the earliest time to live among the ready messages, and when it rings */
  ttlTimer: { timer: NodeJS.Timeout; at: number } | undefined;
  /** false once expired (RabbitMQ deleted it): nothing is routed to it until it is declared again */
  exists: boolean;
  /** the x-expires clock: re-armed on every use */
  expiry: NodeJS.Timeout | undefined;
}

interface Queue extends MessageQueue {
  /** the subscription's dead-letter queue */
  dead: MessageQueue;
}

/** The memory counterpart of a topic's replay stream: every publish, with its offset and time, within the retention. */
interface ReplayLog {
  /** consecutive offsets, oldest first; a replay's marker (no message) takes an offset, as in a RabbitMQ stream */
  entries: { offset: number; publishedAt: number; message: StoredMessage | null }[];
  /** the offset of the next publish */
  next: number;
  bytes: number;
  /** as first declared: like a RabbitMQ stream, it keeps its retention when declared with another */
  retention: StreamRetention;
}

class InMemoryBroker implements MemoryBroker {
  private readonly maxDeliveries: number;
  private readonly expiresMs: number;
  private readonly maxLength: number | undefined;
  private readonly replayStallMs: number;
  /** routing key -> subscription name -> queue */
  private readonly topics = new Map<string, Map<string, Queue>>();
  /** routing key -> the topic's replay log */
  private readonly streams = new Map<string, ReplayLog>();
  private closed = false;

  constructor(options: MemoryBrokerOptions) {
    this.maxDeliveries = options.maxDeliveries ?? 10;
    this.expiresMs = options.subscriptionExpiresMs ?? DEFAULT_SUBSCRIPTION_EXPIRES_MS;
    this.maxLength = options.maxQueueLength;
    this.replayStallMs = options.replayStallMs ?? DEFAULT_REPLAY_STALL_MS;
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

  /** the queue, or NoSubscriptionError once it expired (as consuming from a deleted queue is 404) */
  private existing<Q extends MessageQueue>(queue: Q, what: string): Q {
    if (!queue.exists) throw new NoSubscriptionError(`${what} does not exist`);
    return queue;
  }

  /** re-arms the x-expires clock of a queue; a queue with waiting or unsettled receives (a consumer) does not expire */
  private use(queue: MessageQueue, expire: () => void): void {
    clearTimeout(queue.expiry);
    queue.expiry = setTimeout(() => {
      if (queue.waiters.length > 0 || queue.unacked.size > 0) this.use(queue, expire);
      else expire();
    }, this.expiresMs);
    queue.expiry.unref();
  }

  private useSubscription(topic: TopicRef, subscription: string, queue: Queue, which: MessageQueue): void {
    this.use(which, () => {
      which.exists = false;
      which.ready = [];
      this.stopTtl(which);
      // RabbitMQ deleted both queues once neither is left: forget the subscription
      if (!queue.exists && !queue.dead.exists) this.topics.get(routingKey(topic))?.delete(subscription);
    });
  }

  /** appends a message; over maxLength the oldest ready one overflows (drop-head) */
  private append(queue: MessageQueue, message: StoredMessage): void {
    queue.ready.push(message);
    const expiresAt = expiresAtOfHeaders(message.headers);
    if (expiresAt !== undefined) this.armTtl(queue, expiresAt);
    if (this.maxLength !== undefined && queue.ready.length > this.maxLength) {
      const oldest = queue.ready.shift();
      if (oldest) queue.overflowed(oldest);
    }
    this.dispatch(queue);
  }

  async declareSubscription(topic: TopicRef, subscription: string, retention: StreamRetention = DEFAULT_STREAM_RETENTION): Promise<void> {
    this.checkOpen();
    subscriptionQueue(topic, subscription);
    const key = routingKey(topic);
    if (!this.streams.has(key)) this.streams.set(key, { entries: [], next: 0, bytes: 0, retention });
    let subs = this.topics.get(key);
    if (!subs) {
      subs = new Map();
      this.topics.set(key, subs);
    }
    let queue = subs.get(subscription);
    if (!queue) {
      queue = this.newSubscriptionQueue();
      subs.set(subscription, queue);
    }
    // declaring again brings back an expired queue (empty) and restarts both clocks
    for (const which of [queue, queue.dead]) {
      which.exists = true;
      this.useSubscription(topic, subscription, queue, which);
    }
  }

  async deleteSubscription(topic: TopicRef, subscription: string): Promise<void> {
    this.checkOpen();
    subscriptionQueue(topic, subscription);
    const subs = this.topics.get(routingKey(topic));
    const queue = subs?.get(subscription);
    if (!queue) return;
    subs?.delete(subscription);
    for (const which of [queue, queue.dead]) {
      clearTimeout(which.expiry);
      which.exists = false;
      which.ready = [];
      this.stopTtl(which);
      releaseWaiters(which);
    }
  }

  private newSubscriptionQueue(): Queue {
    // like the `.dlq` queue, which has no dead-letter exchange: a nack without requeue drops the message
    const dead: MessageQueue = {
      ready: [],
      unacked: new Map(),
      waiters: [],
      exists: true,
      expiry: undefined,
      returned: (message, requeue, count) => {
        if (requeue && dead.exists) this.append(dead, { ...message, deliveries: count });
      },
      overflowed: () => undefined,
      deadLetter: undefined,
      ttlTimer: undefined,
    };
    const deadLetter = (message: StoredMessage, why: DeadLetterReason): void => {
      // an expired dead-letter queue is no longer bound: RabbitMQ drops what would be dead-lettered to it
      // a fresh copy: deliveries from the dead-letter queue are counted from 1 again, as RabbitMQ does
      if (dead.exists) this.append(dead, { ...message, headers: { ...message.headers }, deliveries: 0, why });
    };
    const queue: Queue = {
      ready: [],
      unacked: new Map(),
      waiters: [],
      dead,
      exists: true,
      expiry: undefined,
      returned: (message, requeue, count) => {
        if (!requeue) deadLetter(message, rejected);
        else if (count >= this.maxDeliveries) deadLetter(message, maxDeliveryCountExceeded(count));
        // an abandon does not restart the time to live
        else if (expired(message)) deadLetter(message, ttlExpired(expiresAtOfHeaders(message.headers)));
        // to the back, with the next count, as the amqp broker republishes it
        else if (queue.exists) this.append(queue, { ...message, deliveries: count });
      },
      overflowed: (message) => deadLetter(message, maxQueueLengthExceeded),
      deadLetter,
      ttlTimer: undefined,
    };
    return queue;
  }

  /** back to the front, uncounted, as a quorum queue redelivers returned messages first */
  private putBack(queue: MessageQueue, message: StoredMessage): void {
    queue.ready.unshift(message);
    this.dispatch(queue);
  }

  async publish(topic: TopicRef, body: Buffer, options: PublishOptions): Promise<void> {
    this.checkOpen();
    const key = routingKey(topic);
    const queues = [...(this.topics.get(key)?.values() ?? [])].filter((queue) => queue.exists);
    const stream = this.streams.get(key);
    if (queues.length === 0 && !stream) throw new NoSubscriptionError(`no subscription receives ${key}`);
    const publishedAt = Date.now();
    const expiresAt = expiresAtOf(options.ttlMs);
    // each subscription (and the stream) gets its own copy, like a queue does
    const copy = (): StoredMessage => ({
      body: Buffer.from(body),
      messageId: options.messageId,
      contentType: options.contentType,
      headers: { ...options.headers, [PUBLISHED_AT_HEADER]: publishedAt, ...(expiresAt !== undefined && { [EXPIRES_AT_HEADER]: expiresAt }) },
      deliveries: 0,
    });
    if (stream) {
      const message = copy();
      stream.entries.push({ offset: stream.next++, publishedAt, message });
      stream.bytes += message.body.length;
      this.trim(stream);
    }
    for (const queue of queues) this.append(queue, copy());
  }

  /** drops what is beyond the log's retention, oldest first, as RabbitMQ's x-max-age and x-max-length-bytes do */
  private trim(log: ReplayLog): void {
    const oldest = Date.now() - log.retention.maxAgeSec * 1000;
    for (let first = log.entries[0]; first && (first.publishedAt < oldest || log.bytes > log.retention.maxBytes); first = log.entries[0]) {
      log.entries.shift();
      log.bytes -= first.message?.body.length ?? 0;
    }
  }

  async replay(topic: TopicRef, subscription: string, from: ReplayStart, options: ReplayOptions = {}): Promise<ReplayResult> {
    this.checkOpen();
    const what = `subscription ${subscription} of ${routingKey(topic)}`;
    const queue = this.existing(this.queue(topic, subscription), what);
    const log = this.streams.get(routingKey(topic));
    const result: ReplayResult = { copied: 0 };
    if (!log) return result;
    // the marker: what is published from now on reaches the subscription the usual way
    const end = log.next++;
    log.entries.push({ offset: end, publishedAt: Date.now(), message: null });
    let offset = 'offset' in from ? from.offset : 0;
    const since = Math.max('time' in from ? from.time : Number.NEGATIVE_INFINITY, options.notBefore ?? Number.NEGATIVE_INFINITY);
    const room = () => waitForRoom(this.maxLength, async () => this.existing(queue, what).ready.length, { stallMs: this.replayStallMs, signal: options.signal, what });
    while (offset < end && !options.signal?.aborted) {
      this.checkOpen();
      this.trim(log);
      const first = log.entries[0];
      if (!first) break;
      const entry = log.entries[Math.max(0, offset - first.offset)];
      if (!entry || entry.offset >= end) break;
      offset = entry.offset + 1;
      // other replays' markers are skipped
      if (!entry.message || entry.publishedAt < since) continue;
      // back-pressure: a bounded queue would push the oldest copies out (drop-head) faster than they are read
      if (result.copied % replayBatch(this.maxLength) === 0 && !(await room())) break;
      const headers: Record<string, unknown> = { ...entry.message.headers };
      // a copy lives its own time to live from now, or none
      delete headers[EXPIRES_AT_HEADER];
      const expiresAt = expiresAtOf(Math.max(0, options.ttlMs ?? 0));
      if (expiresAt !== undefined) headers[EXPIRES_AT_HEADER] = expiresAt;
      this.append(this.existing(queue, what), { ...entry.message, headers, deliveries: 0 });
      result.copied++;
      result.firstOffset ??= entry.offset;
      result.lastOffset = entry.offset;
      options.onProgress?.({ ...result });
      // a long replay lets publishes, receives and an abort in between, as the amqp broker's does
      await yieldToOthers();
    }
    return result;
  }

  async deleteStream(topic: TopicRef): Promise<void> {
    this.checkOpen();
    this.streams.delete(routingKey(topic));
  }

  async peek(topic: TopicRef, subscription: string, count: number, options: { deadLetter?: boolean } = {}): Promise<PeekedMessage[]> {
    this.checkOpen();
    const queue = this.queue(topic, subscription);
    const which = options.deadLetter ? queue.dead : queue;
    this.useSubscription(topic, subscription, queue, this.existing(which, `${options.deadLetter ? 'dead-letter queue of ' : ''}subscription ${subscription} of ${routingKey(topic)}`));
    return which.ready.slice(0, Math.max(0, count)).map((message) => ({
      body: message.body,
      messageId: message.messageId,
      contentType: message.contentType,
      deliveryCount: message.deliveries + 1,
      ...(message.why && { deadLetterReason: message.why.reason, deadLetterDescription: message.why.description }),
    }));
  }

  /** hands ready messages to waiting receive() calls */
  private dispatch(queue: MessageQueue): void {
    while (queue.waiters.length > 0 && queue.ready.length > 0) {
      const message = this.next(queue);
      if (!message) return;
      const waiter = nextWaiter(queue);
      if (!waiter) {
        queue.ready.unshift(message);
        return;
      }
      waiter.resolve(this.deliver(queue, message));
    }
  }

  private deliver(queue: MessageQueue, message: StoredMessage): Delivery {
    const token = {};
    const count = message.deliveries + 1;
    queue.unacked.set(token, message);
    /** like the amqp broker: settling twice is a no-op, settling after close() is unavailable */
    const settle = async (then: () => void): Promise<void> => {
      if (!queue.unacked.delete(token)) return;
      if (this.closed) throw new BrokerUnavailableError('broker is closed');
      then();
    };
    const { deadLetter } = queue;
    return {
      body: message.body,
      messageId: message.messageId,
      contentType: message.contentType,
      // callers see only the publisher's headers
      headers: publisherHeaders(message.headers),
      deliveryCount: count,
      ...(message.why && { deadLetterReason: message.why.reason, deadLetterDescription: message.why.description }),
      ack: () => settle(() => undefined),
      nack: (requeue) => settle(() => queue.returned(message, requeue, count)),
      release: () =>
        settle(() => {
          if (queue.exists) this.putBack(queue, message);
        }),
      deadLetter: async (reason, description) => {
        if (!deadLetter) throw new TypeError('a dead letter cannot be dead-lettered again');
        const why = checkedReason(reason, description);
        await settle(() => deadLetter(message, why));
      },
    };
  }

  async receive(topic: TopicRef, subscription: string, waitMs: number, signal?: AbortSignal): Promise<Delivery | null> {
    this.checkOpen();
    const queue = this.queue(topic, subscription);
    this.useSubscription(topic, subscription, queue, this.existing(queue, `subscription ${subscription} of ${routingKey(topic)}`));
    return this.take(queue, waitMs, signal);
  }

  async receiveDeadLetter(topic: TopicRef, subscription: string, waitMs: number, signal?: AbortSignal): Promise<Delivery | null> {
    this.checkOpen();
    const queue = this.queue(topic, subscription);
    this.useSubscription(topic, subscription, queue, this.existing(queue.dead, `dead-letter queue of ${subscription} of ${routingKey(topic)}`));
    return this.take(queue.dead, waitMs, signal);
  }

  private take(queue: MessageQueue, waitMs: number, signal: AbortSignal | undefined): Promise<Delivery | null> {
    if (signal?.aborted) return Promise.resolve(null);
    const message = this.next(queue);
    if (message) return Promise.resolve(this.deliver(queue, message));
    if (waitMs <= 0) return Promise.resolve(null);
    return waitForDelivery(queue, waitMs, signal);
  }

  async depth(topic: TopicRef, subscription: string): Promise<number> {
    this.checkOpen();
    return this.existing(this.queue(topic, subscription), `subscription ${subscription} of ${routingKey(topic)}`).ready.length;
  }

  async ping(): Promise<void> {
    this.checkOpen();
  }

  /** the next ready message whose time to live has not ended; those at the head that ended are dead-lettered */
  private next(queue: MessageQueue): StoredMessage | undefined {
    for (;;) {
      const message = queue.ready.shift();
      if (!message || !queue.deadLetter || !expired(message)) return message;
      queue.deadLetter(message, ttlExpired(expiresAtOfHeaders(message.headers)));
    }
  }

  /** like RabbitMQ, a message whose time to live ends while ready is dead-lettered without a receive */
  private armTtl(queue: MessageQueue, at: number): void {
    if (!queue.deadLetter || (queue.ttlTimer && queue.ttlTimer.at <= at)) return;
    this.stopTtl(queue);
    const timer = setTimeout(
      () => {
        queue.ttlTimer = undefined;
        const { deadLetter } = queue;
        if (!deadLetter) return;
        const ended = queue.ready.filter(expired);
        queue.ready = queue.ready.filter((message) => !expired(message));
        for (const message of ended) deadLetter(message, ttlExpired(expiresAtOfHeaders(message.headers)));
        // a loop, not Math.min(...): a queue may hold more messages than a call takes arguments
        let next: number | undefined;
        for (const message of queue.ready) {
          const expiresAt = expiresAtOfHeaders(message.headers);
          if (expiresAt !== undefined && (next === undefined || expiresAt < next)) next = expiresAt;
        }
        if (next !== undefined) this.armTtl(queue, next);
      },
      Math.max(0, at - Date.now()),
    );
    timer.unref();
    queue.ttlTimer = { timer, at };
  }

  private stopTtl(queue: MessageQueue): void {
    if (queue.ttlTimer) clearTimeout(queue.ttlTimer.timer);
    queue.ttlTimer = undefined;
  }

  async resubmitDeadLetters(topic: TopicRef, subscription: string, options: { max: number }): Promise<number> {
    this.checkOpen();
    checkMax(options.max);
    const queue = this.queue(topic, subscription);
    this.existing(queue, `subscription ${subscription} of ${routingKey(topic)}`);
    if (queue.dead.exists) this.useSubscription(topic, subscription, queue, queue.dead);
    // only ready dead letters: those locked by a receiver stay theirs
    const moved = queue.dead.ready.splice(0, options.max);
    for (const { why: _reasonDropped, ...message } of moved) {
      const headers = { ...message.headers };
      // a time to live still running goes on; one that ended is not restarted: the message has none
      if (expired(message)) delete headers[EXPIRES_AT_HEADER];
      this.append(queue, { ...message, headers, deliveries: 0 });
    }
    return moved.length;
  }

  deadLetters(topic: TopicRef, subscription: string): StoredMessage[] {
    return [...this.queue(topic, subscription).dead.ready];
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const subs of this.topics.values()) {
      for (const queue of [...subs.values()].flatMap((sub) => [sub, sub.dead])) {
        clearTimeout(queue.expiry);
        this.stopTtl(queue);
        releaseWaiters(queue);
      }
    }
  }
}

const expired = (message: StoredMessage): boolean => (expiresAtOfHeaders(message.headers) ?? Number.POSITIVE_INFINITY) <= Date.now();

/** The embedded broker for when AMQP_URL is not configured; same semantics as the RabbitMQ broker. */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): MemoryBroker {
  return new InMemoryBroker(options);
}
