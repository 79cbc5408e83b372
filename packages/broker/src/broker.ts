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
  /**
   * Time to live from now, in ms (0 or absent: none). A message not received before it ends is
   * dead-lettered with the reason TTLExpiredException; abandons and lock expiries keep the original end.
   */
  ttlMs?: number;
}

export interface Delivery {
  body: Buffer;
  messageId: string;
  contentType: string | undefined;
  headers: Record<string, unknown>;
  /**
   * Deliveries counting this one: 1, then one more after each nack(true) (an abandon or an expired
   * lock). A return the receiver did not cause (release(), a closed channel or connection, a crashed
   * instance) does not count: a batch prefetched by an instance that died was never handed to a client.
   */
  deliveryCount: number;
  /** settle: remove the message for good */
  ack(): Promise<void>;
  /**
   * settle: requeue = true returns the message to the back of its queue, counting this delivery
   * (maxDeliveries-th time: dead-letters it instead, MaxDeliveryCountExceeded; its time to live ended:
   * TTLExpiredException); requeue = false dead-letters (Rejected) or, on a dead letter, drops it
   */
  nack(requeue: boolean): Promise<void>;
  /**
   * settle: returns the message to the head of its queue without counting this delivery, for one that
   * never reached a client (its receiver went away) or whose instance is shutting down
   */
  release(): Promise<void>;
  /**
   * On a dead letter: why it was dead-lettered (MaxDeliveryCountExceeded, TTLExpiredException,
   * MaxQueueLengthExceeded, Rejected, or a receiver's own reason); absent on the subscription's deliveries.
   */
  deadLetterReason?: string;
  deadLetterDescription?: string;
  /**
   * settle: moves the message to its dead-letter queue with this reason and description (on a dead
   * letter: rejects with a TypeError and leaves the delivery unsettled)
   */
  deadLetter(reason: string, description: string): Promise<void>;
}

/** How long the topic's replay stream keeps its batches: the older or the bytes beyond are dropped (by the broker) */
export interface StreamRetention {
  maxAgeSec: number;
  maxBytes: number;
}

/** Where a replay starts: batches published at or after `time` (ms since the epoch), or from a stream offset (inclusive) */
export type ReplayStart = { time: number } | { offset: number };

export interface ReplayResult {
  copied: number;
  /** stream offsets of the first and the last batch copied */
  firstOffset?: number;
  lastOffset?: number;
}

export interface ReplayOptions {
  /** time to live of each copy from when it is copied (0 / absent: none) */
  ttlMs?: number;
  /** aborting stops the copy: replay() resolves with what was copied so far */
  signal?: AbortSignal;
  /** after each copied batch */
  onProgress?: (progress: ReplayResult) => void;
  /**
   * ms since the epoch: batches published before it are skipped, so a retention is enforced at replay
   * even while RabbitMQ still keeps the segment that holds them (it drops whole segments only)
   */
  notBefore?: number;
}

/** A message as peek() shows it: not locked, not counted as a delivery */
export interface PeekedMessage {
  body: Buffer;
  messageId: string;
  contentType: string | undefined;
  /** what its next delivery will show */
  deliveryCount: number;
  deadLetterReason?: string;
  deadLetterDescription?: string;
}

export interface Broker {
  /**
   * idempotent: declares the topic and a durable subscription queue bound to it (plus its dead-letter
   * queue), and the topic's replay stream with `retention` (default 7 days / 5 GiB). A stream that
   * exists with another retention is kept as it is (RabbitMQ cannot change a queue's arguments).
   */
  declareSubscription(topic: TopicRef, subscription: string, retention?: StreamRetention): Promise<void>;
  /** idempotent: deletes the subscription's queue and its dead-letter queue, with what they hold */
  deleteSubscription(topic: TopicRef, subscription: string): Promise<void>;
  /**
   * Resolves only once the broker has confirmed the message (publisher confirms) to every
   * subscription of the topic and its replay stream. Rejects with NoSubscriptionError when nothing
   * would keep the message: no subscription was ever declared for the topic (no replay stream either),
   * or the stream is gone and so are the subscriptions. While the stream exists a publish is kept by it
   * even when every subscription queue has expired (a replay brings such batches back).
   * BrokerUnavailableError when not connected.
   */
  publish(topic: TopicRef, body: Buffer, options: PublishOptions): Promise<void>;
  /**
   * Waits up to waitMs for one message of the subscription; null when none arrived, or at once when
   * `signal` aborts (the wait ends without taking a message, so none is delivered to nobody).
   */
  receive(topic: TopicRef, subscription: string, waitMs: number, signal?: AbortSignal): Promise<Delivery | null>;
  /**
   * Like receive, from the subscription's dead-letter queue (messages nacked without requeue, delivered
   * maxDeliveries times, expired, pushed out of a full queue or dead-lettered by a receiver). There is no dead-letter queue behind it: nack(true) returns the
   * message to the dead-letter queue however often it was delivered, nack(false) drops it.
   * deliveryCount counts deliveries from the dead-letter queue (from 1 again).
   */
  receiveDeadLetter(topic: TopicRef, subscription: string, waitMs: number, signal?: AbortSignal): Promise<Delivery | null>;
  /**
   * Copies the topic's retained batches from `from` up to the stream's end as it was when replay() was
   * called (a marker written to the stream at the start ends the copy; later publishes reach the
   * subscription the usual way) into the subscription's queue, in stream order, each confirmed;
   * delivery count starts at 1. Back-pressure: a bounded subscription queue (maxQueueLength) is never
   * filled past its bound by the copy, which waits for receivers to make room and rejects with
   * ReplayStalledError when none was made for the broker's replayStallMs. Rejects with NoSubscriptionError when the subscription's queue does
   * not exist, BrokerUnavailableError when not connected. An aborted signal stops the copy (resolves
   * with what was copied so far).
   */
  replay(topic: TopicRef, subscription: string, from: ReplayStart, options?: ReplayOptions): Promise<ReplayResult>;
  /**
   * Up to `count` of the next messages of the subscription (of its dead-letter queue when
   * `deadLetter`), without locking or counting them; [] when none. NoSubscriptionError when the queue
   * does not exist.
   */
  peek(topic: TopicRef, subscription: string, count: number, options?: { deadLetter?: boolean }): Promise<PeekedMessage[]>;
  /** messages ready in the subscription's queue (not counting unacked ones) */
  depth(topic: TopicRef, subscription: string): Promise<number>;
  /**
   * Moves up to `max` dead letters, oldest first, back to the back of their subscription queue: delivery
   * count from 1, reason dropped; a time to live still running is kept, an ended one is not restarted
   * (the message then has none). Dead letters locked by a receiver stay where they are. Resolves with how
   * many moved; rejects with NoSubscriptionError when the subscription does not exist.
   */
  resubmitDeadLetters(topic: TopicRef, subscription: string, options: { max: number }): Promise<number>;
  /**
   * idempotent: deletes the topic's replay stream with what it retains (the topic service calls it when
   * a feed is removed). A publish to the topic without subscriptions then rejects with
   * NoSubscriptionError again; declareSubscription re-creates the stream.
   */
  deleteStream(topic: TopicRef): Promise<void>;
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

/** A replay gave up: the subscription's bounded queue had no room for its copies for too long (nobody received). */
export class ReplayStalledError extends Error {
  override readonly name = 'ReplayStalledError';
  readonly code = 'ERR_REPLAY_STALLED';
}

/** How many copies a replay makes between two looks at the depth of a queue bounded by `maxLength` (back-pressure). */
export const replayBatch = (maxLength: number | undefined): number => Math.max(1, Math.min(100, maxLength ?? 100));
/** How often a replay waiting for room looks at the depth again. */
const REPLAY_ROOM_POLL_MS = 500;
/** How long a replay waits for room by default before it gives up (ReplayStalledError). */
export const DEFAULT_REPLAY_STALL_MS = 10 * 60_000;

/**
 * Back-pressure of a replay into a queue bounded by `maxLength` (undefined: unbounded, no wait):
 * resolves once `depth() + replayBatch(maxLength)` fits, that many copies being about to be made; false when `signal` aborted meanwhile. Rejects with ReplayStalledError after
 * `stallMs` without room.
 */
export async function waitForRoom(maxLength: number | undefined, depth: () => Promise<number>, options: { stallMs: number; signal: AbortSignal | undefined; what: string }): Promise<boolean> {
  if (maxLength === undefined) return true;
  const batch = replayBatch(maxLength);
  const giveUpAt = Date.now() + options.stallMs;
  for (;;) {
    if (options.signal?.aborted) return false;
    if ((await depth()) + batch <= maxLength) return true;
    if (Date.now() >= giveUpAt) {
      throw new ReplayStalledError(`replay into ${options.what} stalled: its queue (at most ${maxLength}) had no room for ${options.stallMs} ms; receive from it and replay again`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(REPLAY_ROOM_POLL_MS, Math.max(1, giveUpAt - Date.now()))));
  }
}
