import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message, Options } from 'amqplib';
import { BrokerUnavailableError, DEFAULT_REPLAY_STALL_MS, NoSubscriptionError, replayBatch, waitForRoom } from './broker.ts';
import type { Broker, Delivery, PeekedMessage, PublishOptions, ReplayOptions, ReplayResult, ReplayStart, StreamRetention, TopicRef } from './broker.ts';
import {
  checkedReason,
  checkMax,
  expiresAtOf,
  expiresAtOfHeaders,
  maxDeliveryCountExceeded,
  maxQueueLengthExceeded,
  overDeliveryLimit,
  rejected,
  ttlExpired,
  type DeadLetterReason,
} from './dead-letters.ts';
import {
  DEAD_LETTER_DESCRIPTION_HEADER,
  DEAD_LETTER_REASON_HEADER,
  DEFAULT_STREAM_RETENTION,
  DEFAULT_SUBSCRIPTION_EXPIRES_MS,
  EXPIRES_AT_HEADER,
  KEPT_ARGUMENTS,
  OWN_HEADER,
  publisherHeaders,
  PUBLISHED_AT_HEADER,
  REPLAY_MARKER_HEADER,
  TOPIC_EXCHANGE,
  declareExchanges,
  deadLetterQueue,
  declareSubscriptionTopology,
  routingKey,
  streamQueue,
  subscriptionQueue,
} from './topology.ts';
import type { QueueBounds, QueueType } from './topology.ts';
import { amqpUrls, connectFirst, redactedUrl } from './urls.ts';
import { nextWaiter, releaseWaiters, waitForDelivery, type Waiter } from './waiters.ts';

export interface AmqpBrokerOptions {
  /**
   * amqp(s)://user:pass@host:port/vhost, or the nodes of one cluster separated by commas: the first
   * that answers is used, and after a connection loss the next ones are tried in turn.
   */
  url: string;
  /** default 'quorum' */
  queueType?: QueueType;
  /** deliveries of a message (see Delivery.deliveryCount) before nack(true) dead-letters it instead of requeueing it; default 10 */
  maxDeliveries?: number;
  /** unacked messages RabbitMQ pushes ahead to each subscription consumer; default 50 */
  prefetch?: number;
  /** receives errors that have no caller to reject (connection loss, failed reconnects) */
  onError?: (err: Error) => void;
  /** shown by the management UI and `rabbitmqctl list_connections client_properties` */
  connectionName?: string;
  /** publish rejects with BrokerUnavailableError when no confirm arrives in time; default 10000 */
  confirmTimeoutMs?: number;
  /**
   * A subscription consumer that nobody has received from for this long is cancelled, returning
   * its prefetched messages to the queue so other instances can deliver them; default 5000. Short,
   * because behind a load balancer the next receive often lands on another instance, whose clients
   * would wait for what this one holds; a returned batch costs no delivery (counted on hand-out).
   */
  idleConsumerMs?: number;
  /**
   * RabbitMQ `x-expires` of both queues of a subscription: deleted once nobody consumed from them or
   * declared them for this long; default 7 days. Declaring a subscription again restarts the clock.
   */
  subscriptionExpiresMs?: number;
  /**
   * Ready messages a subscription queue (and its dead-letter queue) holds at most; beyond it the
   * oldest is dead-lettered (`x-overflow: drop-head`; from the dead-letter queue: dropped), so an
   * unread subscription never refuses a publish its topic's other subscriptions take. Unset = unbounded.
   */
  maxQueueLength?: number;
  /**
   * A replay that receives nothing from the topic's stream (not even its end marker) for this long
   * while no copy is in flight rejects with BrokerUnavailableError rather than wait for ever; default 30000
   */
  replayIdleMs?: number;
  /** a replay waiting this long for room in a bounded subscription queue gives up (ReplayStalledError); default 10 min */
  replayStallMs?: number;
  /** added to this host's clock where a replay compares it with RabbitMQ's (tests play a skew with it); default 0 */
  clockOffsetMs?: number;
}

/**
 * The broker counts hand-outs itself, in a header carried by the message: the deliveryCount its next
 * delivery shows (absent: 1). Only nack(true) raises it, by republishing the message (requeueCounted),
 * so a return nobody asked for (a closed channel or connection, release()) changes nothing. The
 * dead-letter queue counts its own deliveries, in a header of its own.
 */
const DELIVERY_COUNT_HEADER = 'x-keyway-delivery-count';
const DEAD_LETTER_COUNT_HEADER = 'x-keyway-dead-letter-delivery-count';
/** RabbitMQ's own count of returns on quorum queues; not ours, so not the publisher's either */
const QUORUM_DELIVERY_COUNT_HEADER = 'x-delivery-count';
/** what RabbitMQ adds when it dead-letters a message (x-death, x-first-death-queue, ...) */
const DEATH_HEADER = /^x-(death$|first-death-|last-death-)/;
/** our headers each copy of a message sets for itself rather than carries on */
const PER_COPY_HEADERS = new Set([DELIVERY_COUNT_HEADER, DEAD_LETTER_COUNT_HEADER, DEAD_LETTER_REASON_HEADER, DEAD_LETTER_DESCRIPTION_HEADER]);
/** the position RabbitMQ gives each message it delivers from a stream */
const STREAM_OFFSET_HEADER = 'x-stream-offset';
/** stream messages a replay holds unacked at once: copies in flight, bounded */
const REPLAY_PREFETCH = 100;
/**
 * A stream is read from a time by chunk, which RabbitMQ stamps with its own clock when it writes it:
 * reading from this much earlier cannot miss a batch published at the time asked for, even with a
 * chunk written just before it or the clocks of this host and RabbitMQ's some seconds apart (a read
 * starting after the marker would wait for it for ever). What it reads too early is left out by the
 * batches' publish time (PUBLISHED_AT_HEADER).
 */
const CHUNK_MARGIN_MS = 60_000;
const DEFAULT_REPLAY_IDLE_MS = 30_000;
/** how long peek waits at most for the consumer's buffer to fill (see filled()), and between its looks */
const PEEK_FILL_MS = 1000;
const PEEK_SETTLE_MS = 20;
const RECONNECT_MIN_MS = 100;
/**
 * After losing its node of a cluster, the broker waits this long before it reconnects to another.
 * When a node dies, the others elect new leaders for the quorum queues it led within seconds; a
 * channel opened before that kept addressing the dead leader (RabbitMQ 3.10: its publishes nacked,
 * its acks lost, so delivery stalled for good). A single node is reconnected to at once.
 */
const FAILOVER_SETTLE_MS = 5000;
const RECONNECT_MAX_MS = 2000;
/** how long close() waits for RabbitMQ's close-ok before it drops the socket */
const CLOSE_HANDSHAKE_MS = 5000;

/** One connection and the channels that live and die with it. */
interface Session {
  conn: ChannelModel;
  pub: ConfirmChannel;
  admin: Promise<Channel> | null;
  lost: boolean;
  /** the reason RabbitMQ gave for blocking publishes, while it does */
  blocked: string | null;
}

interface ConsumerChannel {
  channel: Channel;
  open: boolean;
  /** deliveries handed to callers and not settled yet; the consumer is not released while > 0 */
  outstanding: number;
}

interface Buffered {
  msg: ConsumeMessage;
  chan: ConsumerChannel;
}

interface Subscription {
  queue: string;
  /** the subscription's dead-letter queue rather than the subscription queue itself */
  deadLetter: boolean;
  consumer: ConsumerChannel | null;
  starting: Promise<void> | null;
  /** delivered by RabbitMQ, not yet handed to a receive() call */
  buffer: Buffered[];
  waiters: Waiter[];
  /** re-establish the consumer after a reconnect (false once released for idleness) */
  wanted: boolean;
  idleTimer: NodeJS.Timeout | null;
}

interface PendingPublish {
  returned: boolean;
}

type PublishProps = Pick<PublishOptions, 'messageId' | 'contentType'> & { headers: Record<string, unknown>; expiration?: number };

/** the publisher's headers of a message as RabbitMQ delivered it: without ours nor what RabbitMQ added */
function deliveredHeaders(raw: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(publisherHeaders(raw)).filter(([name]) => !DEATH_HEADER.test(name) && name !== QUORUM_DELIVERY_COUNT_HEADER));
}

/** the publisher's headers and ours that every copy of the message carries on (publish time, expiry) */
function carriedHeaders(raw: Record<string, unknown>): Record<string, unknown> {
  const own = Object.entries(raw).filter(([name]) => OWN_HEADER.test(name) && !PER_COPY_HEADERS.has(name));
  return { ...deliveredHeaders(raw), ...Object.fromEntries(own) };
}

const reasonHeaders = (why: DeadLetterReason): Record<string, string> => ({ [DEAD_LETTER_REASON_HEADER]: why.reason, [DEAD_LETTER_DESCRIPTION_HEADER]: why.description });

/**
 * Why a message in a dead-letter queue is there: RabbitMQ's own dead-lettering says so in x-death
 * (its time to live ended, or it was pushed out of a full queue, or nack(false)); what we dead-letter
 * ourselves (deadLetter(), the delivery limit, an expiry we noticed first) carries our reason headers.
 */
function deadLetterReasonOf(raw: Record<string, unknown>): DeadLetterReason {
  const deaths = raw['x-death'];
  const last: unknown = Array.isArray(deaths) ? deaths[0] : undefined;
  const rabbit = (last as { reason?: unknown } | undefined)?.reason ?? raw['x-first-death-reason'];
  if (rabbit === 'expired') return ttlExpired(expiresAtOfHeaders(raw));
  if (rabbit === 'maxlen') return maxQueueLengthExceeded;
  // a quorum queue declared with x-delivery-limit before issue 12, kept as it is
  if (rabbit === 'delivery_limit') return overDeliveryLimit;
  const reason = raw[DEAD_LETTER_REASON_HEADER];
  const description = raw[DEAD_LETTER_DESCRIPTION_HEADER];
  if (typeof reason === 'string') return { reason, description: typeof description === 'string' ? description : '' };
  return rejected;
}

/**
 * A dead letter as resubmitted to its subscription: counted from 1, without reason or x-death; a time
 * to live still running goes on, one that ended is not restarted (the message then has none).
 */
function resubmitted(msg: Message): PublishProps {
  const raw: Record<string, unknown> = { ...msg.properties.headers };
  const headers = carriedHeaders(raw);
  const expiresAt = expiresAtOfHeaders(raw);
  const live = expiresAt !== undefined && expiresAt > Date.now();
  if (!live) delete headers[EXPIRES_AT_HEADER];
  return { ...messageProps(msg), headers, ...(live && { expiration: expiresAt - Date.now() }) };
}

function messageProps(msg: Message): { messageId: string; contentType: string | undefined } {
  return {
    messageId: typeof msg.properties.messageId === 'string' ? msg.properties.messageId : '',
    contentType: typeof msg.properties.contentType === 'string' ? msg.properties.contentType : undefined,
  };
}

const errorCode = (err: unknown): unknown => (err as { code?: unknown } | null)?.code;
const isNotFound = (err: unknown): boolean => errorCode(err) === 404;
const KEPT_CONFLICT = new RegExp(`inequivalent arg '(${KEPT_ARGUMENTS.join('|')})'`);
/** 406 PRECONDITION_FAILED because the queue exists with other bounds or a delivery limit (declared by an older version, or other settings) */
const isKeptConflict = (err: unknown): boolean => errorCode(err) === 406 && KEPT_CONFLICT.test(err instanceof Error ? err.message : '');

/** what a message shows a receiver (and peek) besides its body and headers: its count and, on a dead letter, why */
function described(deadLetter: boolean, msg: Message): Omit<PeekedMessage, 'body'> {
  const raw: Record<string, unknown> = { ...msg.properties.headers };
  const counted = raw[deadLetter ? DEAD_LETTER_COUNT_HEADER : DELIVERY_COUNT_HEADER];
  const why = deadLetter ? deadLetterReasonOf(raw) : undefined;
  return {
    ...messageProps(msg),
    // msg.fields.redelivered is not counted: RabbitMQ sets it on a return of a closed channel too
    deliveryCount: typeof counted === 'number' && Number.isInteger(counted) && counted >= 1 ? counted : 1,
    ...(why && { deadLetterReason: why.reason, deadLetterDescription: why.description }),
  };
}

/** an AMQP timestamp (whole seconds) for `x-stream-offset` */
const streamTimestamp = (ms: number) => ({ '!': 'timestamp', value: Math.max(0, Math.floor(ms / 1000)) });

/**
 * Channel errors a caller caused (e.g. 406 PRECONDITION_FAILED: a queue exists with other
 * arguments) pass through unchanged; everything else means RabbitMQ is not usable right now.
 */
function toBrokerError(err: unknown): unknown {
  if (err instanceof BrokerUnavailableError || err instanceof NoSubscriptionError) return err;
  const code = errorCode(err);
  if (code === 403 || code === 405 || code === 406) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BrokerUnavailableError(`rabbitmq unavailable: ${message}`, { cause: err });
}

class AmqpBroker implements Broker {
  private readonly queueType: QueueType;
  private readonly maxDeliveries: number;
  private readonly prefetch: number;
  private readonly confirmTimeoutMs: number;
  private readonly idleConsumerMs: number;
  private readonly bounds: QueueBounds;
  private readonly replayIdleMs: number;
  private readonly replayStallMs: number;
  /** queues found with other bounds than ours, reported once each */
  private readonly keptAsIs = new Set<string>();

  private readonly urls: string[];
  /** the node (index into urls) the next connection attempt starts with */
  private node = 0;
  private session: Session | null = null;
  private opening: Promise<void> | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** subscriptions this instance declared; re-declared after every reconnect */
  private readonly declared = new Map<string, { topic: TopicRef; name: string; retention: StreamRetention }>();
  private readonly subscriptions = new Map<string, Subscription>();
  /** publishes awaiting their confirm, by messageId + routing key, in publish order */
  private readonly pending = new Map<string, PendingPublish[]>();

  constructor(private readonly options: AmqpBrokerOptions) {
    this.urls = amqpUrls(options.url);
    this.queueType = options.queueType ?? 'quorum';
    this.maxDeliveries = options.maxDeliveries ?? 10;
    this.prefetch = options.prefetch ?? 50;
    this.confirmTimeoutMs = options.confirmTimeoutMs ?? 10_000;
    this.idleConsumerMs = options.idleConsumerMs ?? 5_000;
    this.replayIdleMs = options.replayIdleMs ?? DEFAULT_REPLAY_IDLE_MS;
    this.replayStallMs = options.replayStallMs ?? DEFAULT_REPLAY_STALL_MS;
    this.bounds = { expiresMs: options.subscriptionExpiresMs ?? DEFAULT_SUBSCRIPTION_EXPIRES_MS, maxLength: options.maxQueueLength };
    if (!Number.isInteger(this.maxDeliveries) || this.maxDeliveries < 1) {
      throw new RangeError('maxDeliveries must be an integer >= 1');
    }
  }

  /** this host's clock, as a replay compares it with RabbitMQ's */
  private now(): number {
    return Date.now() + (this.options.clockOffsetMs ?? 0);
  }

  private report(err: unknown): void {
    this.options.onError?.(err instanceof Error ? err : new Error(String(err)));
  }

  // ---- connection lifecycle ----

  async start(): Promise<void> {
    this.opening = this.open();
    try {
      await this.opening;
    } finally {
      this.opening = null;
    }
  }

  private async open(): Promise<void> {
    const { conn, index } = await connectFirst(
      this.urls,
      {
        timeout: 5000,
        // amqplib writes a message above 2 KiB as several writes (method, header, body frames); with
        // Nagle's algorithm the last one waits for the ACK RabbitMQ delays by 40 ms, so every publish
        // of a batch above 2 KiB took 40+ ms to be confirmed.
        noDelay: true,
        clientProperties: this.options.connectionName ? { connection_name: this.options.connectionName } : {},
      },
      this.node,
    );
    this.node = index;
    let session: Session | undefined;
    let blocked: string | null = null;
    conn.on('error', (err: unknown) => this.report(err));
    conn.on('close', (err?: Error) => {
      if (session) this.connectionLost(session, index, err);
    });
    // while RabbitMQ blocks publishers (resource alarm) a publish would only run into its timeout
    conn.on('blocked', (reason: string) => {
      blocked = reason;
      if (session) session.blocked = reason;
      this.report(new BrokerUnavailableError(`rabbitmq blocked publishing: ${reason}`));
    });
    conn.on('unblocked', () => {
      blocked = null;
      if (session) session.blocked = null;
    });
    try {
      const pub = await conn.createConfirmChannel();
      session = { conn, pub, admin: null, lost: false, blocked };
      pub.on('error', (err: unknown) => this.report(err));
      pub.on('return', (msg: Message) => this.onReturn(msg));
      // A publish channel only closes on its own after a channel error (e.g. its exchange was
      // deleted); reconnecting everything is rare enough to be the simplest recovery.
      pub.on('close', () => {
        if (!session?.lost) conn.close().catch(() => undefined);
      });
      await declareExchanges(pub);
      for (const { topic, name, retention } of this.declared.values()) await this.declareTopology(session, pub, topic, name, retention);
      if (session.lost) throw new BrokerUnavailableError('connection lost while opening');
      if (this.closed) throw new BrokerUnavailableError('broker closed while connecting');
    } catch (err) {
      // a node that answers but cannot take our declarations is tried last next time
      this.node = (index + 1) % this.urls.length;
      await conn.close().catch(() => undefined);
      throw err;
    }
    this.session = session;
    for (const sub of this.subscriptions.values()) {
      if (sub.wanted) this.ensureConsumer(sub, session).catch((err: unknown) => this.report(err));
    }
  }

  private connectionLost(session: Session, node: number, reason: Error | undefined): void {
    session.lost = true;
    if (this.session !== session) return;
    this.session = null;
    // the node may be gone: the reconnect tries the other nodes first and comes back round to it last
    this.node = (node + 1) % this.urls.length;
    // Unacked messages of the dead channels are requeued by RabbitMQ; buffered copies must not be
    // handed out any more. Waiting receive() calls stay and are served after the reconnect.
    for (const sub of this.subscriptions.values()) {
      if (sub.consumer) sub.consumer.open = false;
      sub.consumer = null;
      sub.buffer = [];
      // a consumer still being started belongs to the dead connection and will fail
      sub.starting = null;
    }
    if (!this.closed) {
      const detail = reason ? `: ${reason.message}` : '';
      this.report(new BrokerUnavailableError(`connection to rabbitmq lost (${redactedUrl(this.urls[node] ?? '')})${detail}; reconnecting`, { cause: reason }));
      this.scheduleReconnect(this.urls.length > 1 ? FAILOVER_SETTLE_MS : RECONNECT_MIN_MS);
    }
  }

  private scheduleReconnect(delayMs: number): void {
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closed) return;
      this.start().catch((err: unknown) => {
        this.report(err);
        if (!this.closed) this.scheduleReconnect(Math.min(delayMs * 2, RECONNECT_MAX_MS));
      });
    }, delayMs);
  }

  private requireSession(): Session {
    if (this.closed) throw new BrokerUnavailableError('broker is closed');
    if (!this.session) throw new BrokerUnavailableError('not connected to rabbitmq (reconnecting)');
    return this.session;
  }

  /** a long-lived channel for declarations and pings; recreated after it closes */
  private adminChannel(session: Session): Promise<Channel> {
    if (!session.admin) {
      const created = session.conn.createChannel().then((ch) => {
        ch.on('error', (err: unknown) => this.report(err));
        ch.on('close', () => {
          if (session.admin === created) session.admin = null;
        });
        return ch;
      });
      created.catch(() => {
        if (session.admin === created) session.admin = null;
      });
      session.admin = created;
    }
    return session.admin;
  }

  // ---- publishing ----

  private onReturn(msg: Message): void {
    const waiting = this.pending.get(`${String(msg.properties.messageId)}\n${msg.fields.routingKey}`);
    const match = waiting?.find((p) => !p.returned);
    if (match) match.returned = true;
  }

  /**
   * Publishes with mandatory + publisher confirm. RabbitMQ sends basic.return before the confirm
   * of an unroutable message, so by the time the confirm callback runs we know whether it was
   * routed to at least one queue.
   */
  private confirmPublish(session: Session, exchange: string, key: string, body: Buffer, props: PublishProps): Promise<void> {
    const pendingKey = `${props.messageId}\n${key}`;
    const pending: PendingPublish = { returned: false };
    const list = this.pending.get(pendingKey) ?? [];
    list.push(pending);
    this.pending.set(pendingKey, list);

    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: unknown): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const remaining = (this.pending.get(pendingKey) ?? []).filter((p) => p !== pending);
        if (remaining.length) this.pending.set(pendingKey, remaining);
        else this.pending.delete(pendingKey);
        if (err) reject(err);
        else resolve();
      };
      // A blocked (resource alarm) or half-dead connection would otherwise leave the caller hanging.
      const timer = setTimeout(() => finish(new BrokerUnavailableError(`no publisher confirm within ${this.confirmTimeoutMs} ms`)), this.confirmTimeoutMs);
      try {
        session.pub.publish(
          exchange,
          key,
          body,
          {
            mandatory: true,
            persistent: true,
            messageId: props.messageId,
            contentType: props.contentType,
            headers: props.headers,
            // a time to live still to run, in ms (RabbitMQ counts it from when the queue takes the message)
            ...(props.expiration !== undefined && { expiration: String(Math.max(1, Math.ceil(props.expiration))) }),
          },
          (err: unknown) => {
            if (pending.returned) finish(new NoSubscriptionError(`no subscription receives ${exchange || 'queue'} ${key}`));
            else if (err) {
              finish(toBrokerError(err));
              // a nack: the queue could not take it, e.g. this channel still addresses a quorum queue leader that died; a new connection asks afresh
              if (!session.lost) session.conn.close().catch(() => undefined);
            } else finish();
          },
        );
      } catch (err) {
        finish(toBrokerError(err));
      }
    });
  }

  async publish(topic: TopicRef, body: Buffer, options: PublishOptions): Promise<void> {
    const key = routingKey(topic);
    const session = this.requireSession();
    if (session.blocked) throw new BrokerUnavailableError(`rabbitmq blocks publishing: ${session.blocked}`);
    const expiresAt = expiresAtOf(options.ttlMs);
    await this.confirmPublish(session, TOPIC_EXCHANGE, key, body, {
      messageId: options.messageId,
      contentType: options.contentType,
      headers: { ...options.headers, [PUBLISHED_AT_HEADER]: this.now(), ...(expiresAt !== undefined && { [EXPIRES_AT_HEADER]: expiresAt }) },
      // a fresh batch lives its whole TTL (expiresAt was taken at this instant; a millisecond later would shave one off)
      ...(expiresAt !== undefined && { expiration: options.ttlMs }),
    });
  }

  // ---- subscriptions ----

  async declareSubscription(topic: TopicRef, subscription: string, retention: StreamRetention = DEFAULT_STREAM_RETENTION): Promise<void> {
    const queue = subscriptionQueue(topic, subscription);
    const session = this.requireSession();
    try {
      await this.declareTopology(session, await this.adminChannel(session), topic, subscription, retention);
    } catch (err) {
      throw toBrokerError(err);
    }
    this.declared.set(queue, { topic, name: subscription, retention });
  }

  private declareTopology(session: Session, channel: Channel, topic: TopicRef, subscription: string, retention: StreamRetention): Promise<void> {
    return declareSubscriptionTopology(channel, topic, subscription, (queue, options) => this.assertOrKeep(session, queue, options), {
      queueType: this.queueType,
      bounds: this.bounds,
      retention,
    });
  }

  /** Runs `fn` on a channel of its own: a refused declaration or a missing queue closes the channel it ran on. */
  private async onOwnChannel<T>(session: Session, fn: (channel: Channel) => Promise<T>): Promise<T> {
    const channel = await session.conn.createChannel();
    channel.on('error', () => undefined);
    try {
      return await fn(channel);
    } finally {
      channel.close().catch(() => undefined);
    }
  }

  /**
   * Declares a queue. One that exists with other bounds (declared before queues had them, or under
   * other settings) or with an `x-delivery-limit` (declared before issue 12) is kept as it is rather
   * than refused: RabbitMQ cannot change a queue's arguments, and deleting it would lose its messages.
   * It is reported once, so an operator can bound it with a policy (`rabbitmqctl set_policy`) or move
   * its messages and delete it (README); queues of any other mismatch stay refused.
   */
  private async assertOrKeep(session: Session, queue: string, options: Options.AssertQueue): Promise<void> {
    try {
      await this.onOwnChannel(session, (ch) => ch.assertQueue(queue, options));
    } catch (err) {
      if (!isKeptConflict(err)) throw err;
      await this.onOwnChannel(session, (ch) => ch.checkQueue(queue));
      if (!this.keptAsIs.has(queue)) {
        this.keptAsIs.add(queue);
        this.report(new Error(`queue ${queue} exists with other arguments than configured, kept as it is (${(err as Error).message})`));
      }
    }
  }

  async deleteSubscription(topic: TopicRef, subscription: string): Promise<void> {
    const queue = subscriptionQueue(topic, subscription);
    const session = this.requireSession();
    this.declared.delete(queue);
    try {
      // RabbitMQ cancels the consumers of a deleted queue (onMessage(null) drops ours)
      await this.onOwnChannel(session, async (ch) => {
        await ch.deleteQueue(queue);
        await ch.deleteQueue(deadLetterQueue(queue));
      });
    } catch (err) {
      throw toBrokerError(err);
    }
  }

  private subscription(topic: TopicRef, name: string, deadLetter: boolean): Subscription {
    const queue = deadLetter ? deadLetterQueue(subscriptionQueue(topic, name)) : subscriptionQueue(topic, name);
    let sub = this.subscriptions.get(queue);
    if (!sub) {
      sub = { queue, deadLetter, consumer: null, starting: null, buffer: [], waiters: [], wanted: false, idleTimer: null };
      this.subscriptions.set(queue, sub);
    }
    return sub;
  }

  private async ensureConsumer(sub: Subscription, session: Session): Promise<void> {
    if (sub.consumer?.open) return;
    if (!sub.starting) {
      const starting = this.startConsumer(sub, session).finally(() => {
        if (sub.starting === starting) sub.starting = null;
      });
      sub.starting = starting;
    }
    await sub.starting;
  }

  /**
   * One channel per subscription consumer, so a channel error (which closes a channel) only
   * affects that subscription. Consumed messages go to waiting receive() calls or the buffer.
   */
  private async startConsumer(sub: Subscription, session: Session): Promise<void> {
    let channel: Channel;
    try {
      channel = await session.conn.createChannel();
    } catch (err) {
      throw toBrokerError(err);
    }
    const chan: ConsumerChannel = { channel, open: true, outstanding: 0 };
    channel.on('error', (err: unknown) => {
      // consuming from a missing queue is reported to the receive() caller instead
      if (!isNotFound(err)) this.report(err);
    });
    channel.on('close', () => this.dropConsumer(sub, chan));
    try {
      await channel.prefetch(this.prefetch);
      await channel.consume(sub.queue, (msg) => this.onMessage(sub, chan, msg), { noAck: false });
    } catch (err) {
      this.dropConsumer(sub, chan);
      if (isNotFound(err)) throw new NoSubscriptionError(`subscription queue ${sub.queue} does not exist`);
      throw toBrokerError(err);
    }
    if (!chan.open || this.session !== session) {
      this.dropConsumer(sub, chan);
      throw new BrokerUnavailableError('connection lost while starting the consumer');
    }
    sub.consumer = chan;
    sub.wanted = true;
  }

  /** Forgets a consumer channel; closing it makes RabbitMQ requeue everything it still held. */
  private dropConsumer(sub: Subscription, chan: ConsumerChannel): void {
    const wasOpen = chan.open;
    chan.open = false;
    if (sub.consumer === chan) sub.consumer = null;
    sub.buffer = sub.buffer.filter((b) => b.chan !== chan);
    if (wasOpen) chan.channel.close().catch(() => undefined);
  }

  private onMessage(sub: Subscription, chan: ConsumerChannel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // RabbitMQ cancelled the consumer, e.g. because the queue was deleted
      sub.wanted = false;
      this.dropConsumer(sub, chan);
      return;
    }
    if (!chan.open) return;
    if (this.expireIfEnded(sub, chan, msg)) return;
    const waiter = nextWaiter(sub);
    if (waiter) {
      waiter.resolve(this.toDelivery(sub, { msg, chan }));
    } else {
      sub.buffer.push({ msg, chan });
    }
  }

  /** (Re)arms the timer that releases a consumer nobody receives from any more. */
  private touch(sub: Subscription): void {
    // every receive comes through here: re-arm the existing timer rather than make a new one
    if (sub.idleTimer) {
      sub.idleTimer.refresh();
      return;
    }
    sub.idleTimer = setTimeout(() => {
      sub.idleTimer = null;
      if (sub.waiters.length > 0 || (sub.consumer?.outstanding ?? 0) > 0) {
        this.touch(sub);
        return;
      }
      sub.wanted = false;
      if (sub.consumer) this.dropConsumer(sub, sub.consumer);
    }, this.idleConsumerMs);
    sub.idleTimer.unref();
  }

  /** drops the local state of a subscription that does not exist, so bad names cannot pile up */
  private forget(sub: Subscription): void {
    if (sub.idleTimer) clearTimeout(sub.idleTimer);
    this.subscriptions.delete(sub.queue);
  }

  receive(topic: TopicRef, subscription: string, waitMs: number, signal?: AbortSignal): Promise<Delivery | null> {
    return this.receiveFrom(topic, subscription, false, waitMs, signal);
  }

  receiveDeadLetter(topic: TopicRef, subscription: string, waitMs: number, signal?: AbortSignal): Promise<Delivery | null> {
    return this.receiveFrom(topic, subscription, true, waitMs, signal);
  }

  private async receiveFrom(topic: TopicRef, subscription: string, deadLetter: boolean, waitMs: number, signal: AbortSignal | undefined): Promise<Delivery | null> {
    const session = this.requireSession();
    const sub = this.subscription(topic, subscription, deadLetter);
    this.touch(sub);
    try {
      await this.ensureConsumer(sub, session);
    } catch (err) {
      // closed while the consumer was starting: a receive under way ends empty, as a waiting one does
      if (this.closed) return null;
      if (err instanceof NoSubscriptionError && sub.waiters.length === 0) this.forget(sub);
      throw err;
    }
    if (signal?.aborted) return null;
    let next = sub.buffer.shift();
    // one that waited in the buffer past its time to live is not handed out
    while (next && this.expireIfEnded(sub, next.chan, next.msg)) next = sub.buffer.shift();
    if (next) return this.toDelivery(sub, next);
    if (waitMs <= 0) return null;
    return waitForDelivery(sub, waitMs, signal, () => this.touch(sub));
  }

  private toDelivery(sub: Subscription, { msg, chan }: Buffered): Delivery {
    chan.outstanding++;
    const raw: Record<string, unknown> = { ...msg.properties.headers };
    const countHeader = sub.deadLetter ? DEAD_LETTER_COUNT_HEADER : DELIVERY_COUNT_HEADER;
    // the counters are exposed as deliveryCount, the reason as deadLetterReason; callers see only the publisher's headers
    const { messageId, contentType, deliveryCount, deadLetterReason, deadLetterDescription } = described(sub.deadLetter, msg);
    const why = deadLetterReason === undefined ? undefined : { reason: deadLetterReason, description: deadLetterDescription ?? '' };
    const headers = deliveredHeaders(raw);
    const carried = carriedHeaders(raw);
    const expiresAt = expiresAtOfHeaders(raw);

    let settled = false;
    /** settling twice is a no-op: a second ack of the same tag would make RabbitMQ close the channel */
    const settle = async (action: () => Promise<void>): Promise<void> => {
      if (settled) return;
      settled = true;
      chan.outstanding--;
      if (!chan.open) {
        throw new BrokerUnavailableError('the channel of this delivery closed; rabbitmq has requeued the message');
      }
      try {
        await action();
      } catch (err) {
        throw toBrokerError(err);
      }
    };

    /** a counted requeue: to the back of its queue with the next count; a dead letter keeps its reason, no copy restarts a time to live */
    const requeueCounted = (): Promise<void> => {
      const expiration = !sub.deadLetter && expiresAt !== undefined ? { expiration: expiresAt - Date.now() } : {};
      const own = why ? reasonHeaders(why) : {};
      return this.republish(chan, msg, sub.queue, { messageId, contentType, headers: { ...carried, ...own, [countHeader]: deliveryCount + 1 }, ...expiration });
    };
    const toDeadLetters = (reason: DeadLetterReason): Promise<void> => this.deadLetterCopy(sub, chan, msg, reason);

    return {
      body: msg.content,
      messageId,
      contentType,
      headers,
      deliveryCount,
      ...(why && { deadLetterReason: why.reason, deadLetterDescription: why.description }),
      ack: () => settle(async () => chan.channel.ack(msg)),
      nack: (requeue) =>
        settle(async () => {
          // RabbitMQ dead-letters a rejected message (x-death reason `rejected`); the dead-letter queue has no dead-letter exchange: it drops it
          if (!requeue) chan.channel.nack(msg, false, false);
          // the dead-letter queue has no delivery limit
          else if (sub.deadLetter) await requeueCounted();
          else if (deliveryCount >= this.maxDeliveries) await toDeadLetters(maxDeliveryCountExceeded(deliveryCount));
          // an abandon does not restart the time to live
          else if (expiresAt !== undefined && expiresAt <= Date.now()) await toDeadLetters(ttlExpired(expiresAt));
          else await requeueCounted();
        }),
      // a plain requeue: back to the head of the queue (quorum) with its count unchanged
      release: () => settle(async () => chan.channel.nack(msg, false, true)),
      deadLetter: async (reason, description) => {
        if (sub.deadLetter) throw new TypeError('a dead letter cannot be dead-lettered again');
        const own = checkedReason(reason, description);
        await settle(() => toDeadLetters(own));
      },
    };
  }

  /**
   * A copy of the message, confirmed, then the original acked: a counted requeue (to the same queue,
   * at its back) or a dead letter (to the dead-letter queue), through the default exchange so no other
   * queue gets it. Should this instance die between the two, RabbitMQ returns the original too: a
   * duplicate, never a loss.
   */
  private async republish(chan: ConsumerChannel, msg: ConsumeMessage, queue: string, props: PublishProps): Promise<void> {
    const session = this.requireSession();
    try {
      await this.confirmPublish(session, '', queue, msg.content, props);
    } catch (err) {
      // the copy is not safely stored: fall back to a plain requeue, losing only the count or the move
      if (chan.open) chan.channel.nack(msg, false, true);
      throw err;
    }
    if (chan.open) chan.channel.ack(msg);
  }

  /** moves a message of a subscription queue to its dead-letter queue with our reason (which x-death could not carry); the dead letter has no time to live */
  private deadLetterCopy(sub: Subscription, chan: ConsumerChannel, msg: ConsumeMessage, why: DeadLetterReason): Promise<void> {
    const headers = { ...carriedHeaders({ ...msg.properties.headers }), ...reasonHeaders(why) };
    return this.republish(chan, msg, deadLetterQueue(sub.queue), { ...messageProps(msg), headers });
  }

  /**
   * A message whose time to live ended after RabbitMQ handed it to this instance (RabbitMQ expires only
   * ready ones) is dead-lettered rather than handed out; true when it was.
   */
  private expireIfEnded(sub: Subscription, chan: ConsumerChannel, msg: ConsumeMessage): boolean {
    const expiresAt = expiresAtOfHeaders(msg.properties.headers ?? {});
    if (sub.deadLetter || expiresAt === undefined || expiresAt > Date.now()) return false;
    // held like a delivery until moved, so the idle release does not close its channel in between
    chan.outstanding++;
    this.deadLetterCopy(sub, chan, msg, ttlExpired(expiresAt))
      .catch((err: unknown) => this.report(err))
      .finally(() => chan.outstanding--);
    return true;
  }

  // ---- replay and peek ----

  /**
   * Writes a marker into the topic's stream, then reads the stream from `from` to the marker on one
   * channel and copies each batch into the subscription's queue (default exchange, confirmed). The
   * marker bounds the work however fast the topic is published to meanwhile.
   */
  async replay(topic: TopicRef, subscription: string, from: ReplayStart, options: ReplayOptions = {}): Promise<ReplayResult> {
    const queue = subscriptionQueue(topic, subscription);
    const stream = streamQueue(topic);
    const session = this.requireSession();
    const result: ReplayResult = { copied: 0 };
    try {
      await this.onOwnChannel(session, (ch) => ch.checkQueue(queue));
    } catch (err) {
      if (isNotFound(err)) throw new NoSubscriptionError(`subscription queue ${queue} does not exist`);
      throw toBrokerError(err);
    }
    if (options.signal?.aborted) return result;
    const marker = randomUUID();
    const markedAt = this.now();
    try {
      await this.confirmPublish(session, '', stream, Buffer.alloc(0), { messageId: `replay-marker-${marker}`, contentType: undefined, headers: { [REPLAY_MARKER_HEADER]: marker } });
    } catch (err) {
      if (!(err instanceof NoSubscriptionError)) throw err;
      // the marker came back unroutable: no stream (the topic's subscriptions were declared before streams
      // existed, or its feed was removed) retains nothing; a stream that is there must not read as empty
      const exists = await this.onOwnChannel(session, (ch) => ch.checkQueue(stream)).then(
        () => true,
        (checkErr: unknown) => {
          if (isNotFound(checkErr)) return false;
          throw toBrokerError(checkErr);
        },
      );
      if (!exists) return result;
      throw new BrokerUnavailableError(`the replay marker was not routed to ${stream}, which exists: try again`, { cause: err });
    }
    let start: unknown;
    if ('time' in from) {
      // a read starting after the marker would wait for it forever
      start = streamTimestamp(Math.min(from.time, markedAt) - CHUNK_MARGIN_MS);
    } else {
      // likewise an offset beyond the marker: find where the marker is first
      const end = await this.readStream(session, stream, streamTimestamp(markedAt - CHUNK_MARGIN_MS), marker, options.signal, () => undefined);
      if (end === undefined || from.offset > end) return result;
      start = from.offset;
    }
    const since = Math.max('time' in from ? from.time : Number.NEGATIVE_INFINITY, options.notBefore ?? Number.NEGATIVE_INFINITY);
    const what = `subscription queue ${queue}`;
    const depth = async (): Promise<number> => {
      try {
        return (await this.onOwnChannel(session, (ch) => ch.checkQueue(queue))).messageCount;
      } catch (err) {
        throw isNotFound(err) ? new NoSubscriptionError(`subscription queue ${queue} does not exist`) : toBrokerError(err);
      }
    };
    const batch = replayBatch(this.bounds.maxLength);
    /** copies to make, in stream order; each waits for the one before it to be confirmed only at a back-pressure check */
    let wanted = 0;
    let lastCopy: Promise<void> = Promise.resolve();
    /** false once a back-pressure wait saw the signal abort: no more copies */
    let room: Promise<boolean> = Promise.resolve(true);
    await this.readStream(session, stream, start, marker, options.signal, (msg, offset) => {
      const publishedAt: unknown = msg.properties.headers?.[PUBLISHED_AT_HEADER];
      // a batch without the stamp was published by a version before it: kept (at least once)
      if (typeof publishedAt === 'number' && publishedAt < since) return undefined;
      // back-pressure: before every batch of copies, once the copies before are confirmed, the queue
      // must have room for the batch, or drop-head would push the oldest copies out unread
      if (wanted++ % batch === 0) {
        const before = lastCopy;
        room = before.then(() => waitForRoom(this.bounds.maxLength, depth, { stallMs: this.replayStallMs, signal: options.signal, what }));
      }
      const headers: Record<string, unknown> = { ...msg.properties.headers };
      delete headers[STREAM_OFFSET_HEADER];
      // a copy lives its own time to live from now, or none
      delete headers[EXPIRES_AT_HEADER];
      const { messageId, contentType } = described(false, msg);
      const copied = room.then(async (proceed) => {
        if (!proceed || options.signal?.aborted) return;
        const expiresAt = expiresAtOf(Math.max(0, options.ttlMs ?? 0));
        if (expiresAt !== undefined) headers[EXPIRES_AT_HEADER] = expiresAt;
        await this.confirmPublish(session, '', queue, msg.content, { messageId, contentType, headers, ...(expiresAt !== undefined && { expiration: expiresAt - Date.now() }) });
        result.copied++;
        result.firstOffset ??= offset;
        result.lastOffset = offset;
        options.onProgress?.({ ...result });
      });
      lastCopy = copied;
      return copied;
    });
    return { ...result };
  }

  /**
   * Consumes `stream` from `start` (an offset or a timestamp) on a channel of its own until the
   * message marked `marker`; resolves with the marker's offset, or undefined when `signal` aborts.
   * Other replays' markers are skipped. `onEntry` is called in stream order as messages arrive; what it
   * returns (a copy in flight) is awaited, in order, before the message is acked, so at most
   * REPLAY_PREFETCH copies are in flight and the marker resolves only after every copy before it.
   * A watchdog rejects with BrokerUnavailableError when nothing arrives for replayIdleMs while no copy
   * is in flight (a copy waiting for room has a limit of its own): a read that started after its
   * marker, or a stream that stopped delivering, would wait for ever.
   */
  private async readStream(
    session: Session,
    stream: string,
    start: unknown,
    marker: string,
    signal: AbortSignal | undefined,
    onEntry: (msg: ConsumeMessage, offset: number) => Promise<void> | undefined,
  ): Promise<number | undefined> {
    let channel: Channel;
    try {
      channel = await session.conn.createChannel();
    } catch (err) {
      throw toBrokerError(err);
    }
    channel.on('error', () => undefined);
    let done = false;
    /** the copies in flight, in stream order */
    let tail: Promise<void> = Promise.resolve();
    let inFlight = 0;
    let watchdog: NodeJS.Timeout | undefined;
    try {
      return await new Promise<number | undefined>((resolve, reject) => {
        const watch = (): void => {
          clearTimeout(watchdog);
          if (done || inFlight > 0) return;
          watchdog = setTimeout(() => {
            finish({ error: new BrokerUnavailableError(`replay of ${stream}: nothing read from the stream, nor its end marker, for ${this.replayIdleMs} ms`) });
          }, this.replayIdleMs);
        };
        const finish = (outcome: { offset?: number } | { error: unknown }): void => {
          if (done) return;
          done = true;
          clearTimeout(watchdog);
          signal?.removeEventListener('abort', aborted);
          // what was copied before the end (or the abort) is confirmed first
          tail.then(
            () => ('error' in outcome ? reject(outcome.error) : resolve(outcome.offset)),
            (err: unknown) => reject(err),
          );
        };
        const aborted = (): void => finish({});
        signal?.addEventListener('abort', aborted, { once: true });
        channel.on('close', () => finish({ error: new BrokerUnavailableError(`the channel reading ${stream} closed`) }));
        const onMessage = (msg: ConsumeMessage | null): void => {
          if (done) return;
          clearTimeout(watchdog);
          if (msg === null) {
            finish({ error: new BrokerUnavailableError(`rabbitmq cancelled the read of ${stream}`) });
            return;
          }
          const offset = Number(msg.properties.headers?.[STREAM_OFFSET_HEADER]);
          const markedBy: unknown = msg.properties.headers?.[REPLAY_MARKER_HEADER];
          if (markedBy === marker) {
            finish({ offset });
            return;
          }
          const entry = markedBy === undefined ? onEntry(msg, offset) : undefined;
          // handled in its turn below; until then its failure must not count as unhandled
          entry?.catch(() => undefined);
          inFlight++;
          const acked = tail
            .then(() => entry)
            .then(() => {
              // once done the channel closes, which is all the unacked ones need
              if (!done) channel.ack(msg);
              inFlight--;
              watch();
            });
          tail = acked;
          acked.catch((err: unknown) => finish({ error: err }));
        };
        channel
          .prefetch(REPLAY_PREFETCH)
          .then(() => channel.consume(stream, onMessage, { noAck: false, arguments: { [STREAM_OFFSET_HEADER]: start } }))
          .then(watch)
          .catch((err: unknown) => finish({ error: toBrokerError(err) }));
        if (signal?.aborted) aborted();
      });
    } finally {
      done = true;
      clearTimeout(watchdog);
      await channel.close().catch(() => undefined);
    }
  }

  /**
   * AMQP cannot browse a queue, and a quorum queue puts what is returned to it at its back (RabbitMQ
   * 3.10), so taking messages to look at them and returning them would reorder the queue. Peek shows
   * what this instance's consumer of the queue has prefetched and not handed out yet instead: the next
   * messages, left where they are for the receives that follow, counting nothing. It starts that
   * consumer if needed and lets it fill (up to its prefetch, waiting at most PEEK_FILL_MS). Limits:
   * at most `prefetch` messages are shown, and messages another instance prefetched are not; a
   * consumer nobody receives from is released after idleConsumerMs, as after a receive, and a quorum
   * queue then puts what it held at its back.
   */
  async peek(topic: TopicRef, subscription: string, count: number, options: { deadLetter?: boolean } = {}): Promise<PeekedMessage[]> {
    const session = this.requireSession();
    const sub = this.subscription(topic, subscription, options.deadLetter ?? false);
    this.touch(sub);
    try {
      await this.ensureConsumer(sub, session);
      await this.filled(sub, session, count);
    } catch (err) {
      if (this.closed) return [];
      if (err instanceof NoSubscriptionError && sub.waiters.length === 0) this.forget(sub);
      throw err;
    }
    // what ended its time to live while buffered is dead-lettered, as a receive would, rather than shown
    sub.buffer = sub.buffer.filter(({ msg, chan }) => !this.expireIfEnded(sub, chan, msg));
    return sub.buffer.slice(0, Math.max(0, count)).map(({ msg }) => ({ body: msg.content, ...described(sub.deadLetter, msg) }));
  }

  /** Waits until the consumer's buffer holds `count` messages, the consumer is full, or the queue has none ready. */
  private async filled(sub: Subscription, session: Session, count: number): Promise<void> {
    const deadline = Date.now() + PEEK_FILL_MS;
    while (sub.buffer.length < count && Date.now() < deadline) {
      if (!sub.consumer?.open || sub.buffer.length + sub.consumer.outstanding >= this.prefetch) return;
      const { messageCount } = await this.onOwnChannel(session, (ch) => ch.checkQueue(sub.queue)).catch((err: unknown) => {
        throw isNotFound(err) ? new NoSubscriptionError(`subscription queue ${sub.queue} does not exist`) : toBrokerError(err);
      });
      if (messageCount === 0) {
        // the queue may have sent us some that are still on their way
        await delay(PEEK_SETTLE_MS);
        return;
      }
      await delay(PEEK_SETTLE_MS);
    }
  }

  async depth(topic: TopicRef, subscription: string): Promise<number> {
    const queue = subscriptionQueue(topic, subscription);
    const session = this.requireSession();
    // checkQueue of a missing queue closes its channel, so it gets a channel of its own
    let channel: Channel | undefined;
    try {
      channel = await session.conn.createChannel();
      channel.on('error', () => undefined);
      const { messageCount } = await channel.checkQueue(queue);
      // messages prefetched into this instance's buffer are not handed out yet, so still count them
      return messageCount + (this.subscriptions.get(queue)?.buffer.length ?? 0);
    } catch (err) {
      if (isNotFound(err)) throw new NoSubscriptionError(`subscription queue ${queue} does not exist`);
      throw toBrokerError(err);
    } finally {
      channel?.close().catch(() => undefined);
    }
  }

  /**
   * Dead letters this instance's dead-letter consumer prefetched (handed to nobody) go first: they are
   * the oldest, and basic.get cannot see them; then basic.get. Each copy is confirmed before the dead
   * letter is acked (a crash in between: a duplicate, never a loss). What another instance's consumer
   * prefetched stays there until it releases it (idleConsumerMs after its last receive).
   */
  async resubmitDeadLetters(topic: TopicRef, subscription: string, options: { max: number }): Promise<number> {
    checkMax(options.max);
    const queue = subscriptionQueue(topic, subscription);
    const dlq = deadLetterQueue(queue);
    const session = this.requireSession();
    try {
      // basic.get on a channel of its own: a missing queue closes it, and so does a failed copy, which returns the dead letter it took
      return await this.onOwnChannel(session, async (ch) => {
        await ch.checkQueue(queue);
        let moved = 0;
        while (moved < options.max) {
          const held = this.subscriptions.get(dlq)?.buffer.shift();
          if (held) {
            await this.republish(held.chan, held.msg, queue, resubmitted(held.msg));
          } else {
            const msg = await ch.get(dlq, { noAck: false });
            if (msg === false) break;
            await this.confirmPublish(session, '', queue, msg.content, resubmitted(msg));
            ch.ack(msg);
          }
          moved++;
        }
        return moved;
      });
    } catch (err) {
      if (isNotFound(err)) throw new NoSubscriptionError(`subscription queue ${queue} or its dead-letter queue does not exist`);
      throw toBrokerError(err);
    }
  }

  async deleteStream(topic: TopicRef): Promise<void> {
    const stream = streamQueue(topic);
    const session = this.requireSession();
    try {
      // deleting a queue that does not exist is a no-op on RabbitMQ
      await this.onOwnChannel(session, (ch) => ch.deleteQueue(stream));
    } catch (err) {
      throw toBrokerError(err);
    }
  }

  async ping(): Promise<void> {
    const session = this.requireSession();
    try {
      const ch = await this.adminChannel(session);
      await ch.checkExchange(TOPIC_EXCHANGE);
    } catch (err) {
      throw toBrokerError(err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    await this.opening?.catch(() => undefined);
    for (const sub of this.subscriptions.values()) {
      if (sub.idleTimer) clearTimeout(sub.idleTimer);
      releaseWaiters(sub);
      sub.buffer = [];
      if (sub.consumer) sub.consumer.open = false;
    }
    const session = this.session;
    this.session = null;
    if (!session) return;
    session.lost = true;
    // closing the connection makes RabbitMQ requeue every unacked delivery; a broker slow to answer
    // the close handshake must not hold a shutdown, and dropping the socket requeues them just the same
    const closed = session.conn.close().then(
      () => true,
      () => true,
    );
    const answered = await Promise.race([closed, delay(CLOSE_HANDSHAKE_MS).then(() => false)]);
    if (!answered) (session.conn as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  }
}

/**
 * RabbitMQ broker. Connects to the first node of `url` that answers before resolving (rejects with
 * BrokerUnavailableError otherwise); after a connection loss it reconnects by itself, trying the
 * other nodes first and then round the list (100 ms backoff doubling to 2 s between rounds),
 * re-declares what it declared and resumes consumers. While disconnected every call rejects with BrokerUnavailableError;
 * receive() calls already waiting keep waiting and may still be served after the reconnect.
 *
 * Settling a delivery whose channel has closed rejects with BrokerUnavailableError (RabbitMQ has
 * already requeued the message, so it will be delivered again). Settling twice is a no-op.
 */
export async function createAmqpBroker(options: AmqpBrokerOptions): Promise<Broker> {
  const broker = new AmqpBroker(options);
  try {
    await broker.start();
  } catch (err) {
    throw toBrokerError(err);
  }
  return broker;
}
