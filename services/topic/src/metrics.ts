import { metrics, type Attributes, type Counter, type Meter, type ObservableResult } from '@opentelemetry/api';
import { NoSubscriptionError, type Broker, type TopicRef } from '@keyway/broker';
import { setBounded } from './bounded-cache.ts';
import { inParallel } from './delivery/lock-owners.ts';

/**
 * The delivery figures (issue 15), through @opentelemetry/api: no-ops until the process registers a
 * MeterProvider, so they are made at app creation, after telemetry started.
 *
 * Attributes are the feed (`tenant`, `topic`), never the subscription or the batch: a counter is only
 * moved after the SAS guard (or the internal route's mTLS) passed, so its series are the feeds that
 * exist, a number the operator controls; subscriptions multiply that by whatever customers list and
 * add nothing a delivery dashboard sums over. The depth gauge alone names the subscription, since a
 * depth is a queue's. `queue` tells the subscription from its dead-letter queue, which an operator
 * drains by hand and which must not blur the delivery rates.
 */
export interface TopicMetrics {
  published(tenant: string, topic: string, bytes: number): void;
  received(tenant: string, topic: string, deadLetter: boolean, bytes: number): void;
  completed(tenant: string, topic: string, deadLetter: boolean): void;
  /** an abandon, or a lock a stream gave back when it closed: both count a delivery */
  abandoned(tenant: string, topic: string, deadLetter: boolean): void;
  lockExpired(tenant: string, topic: string, deadLetter: boolean): void;
  /** moved to the dead-letter queue: its last delivery returned (max_deliveries), not a batch (unreadable), or by its receiver (receiver: the receiver's own reason is not a label, so the series stay few) */
  deadLettered(tenant: string, topic: string, reason: 'max_deliveries' | 'unreadable' | 'receiver'): void;
}

/** the attribute sets of one feed, made once: recording a delivery allocates nothing of ours */
interface FeedAttributes {
  feed: Attributes;
  subscription: Attributes;
  deadLetter: Attributes;
  maxDeliveries: Attributes;
  unreadable: Attributes;
  receiver: Attributes;
}

/** bounds of the attribute cache; a feed beyond them is made again when next seen (the series stay) */
const MAX_TENANTS = 10_000;
const MAX_TOPICS_PER_TENANT = 1000;

export function topicMetrics(meter: Meter = metrics.getMeter('keyway.topic')): TopicMetrics {
  const counter = (name: string, description: string, unit?: string): Counter => meter.createCounter(name, { description, ...(unit && { unit }) });
  const batchesPublished = counter('keyway.topic.batches.published', 'batches the broker confirmed (201), by tenant and topic');
  const bytesPublished = counter('keyway.topic.published.bytes', 'bytes of the batches published, as stored, by tenant and topic', 'By');
  const batchesReceived = counter('keyway.topic.batches.received', 'batches handed out under a lock (receive or stream), by tenant, topic and queue');
  const bytesReceived = counter('keyway.topic.received.bytes', 'bytes of the batches handed out, by tenant, topic and queue', 'By');
  const batchesCompleted = counter('keyway.topic.batches.completed', 'locked batches completed (acked), by tenant, topic and queue');
  const batchesAbandoned = counter('keyway.topic.batches.abandoned', 'locked batches given back (abandon, or a closed stream), by tenant, topic and queue');
  const locksExpired = counter('keyway.topic.locks.expired', 'locks that expired unsettled (the batch is delivered again), by tenant, topic and queue');
  const batchesDeadLettered = counter('keyway.topic.batches.dead_lettered', 'batches this service moved to a dead-letter queue, by tenant, topic and reason');

  const feeds = new Map<string, Map<string, FeedAttributes>>();
  const attributesOf = (tenant: string, topic: string): FeedAttributes => {
    let topics = feeds.get(tenant);
    if (!topics) {
      topics = new Map();
      setBounded(feeds, tenant, topics, MAX_TENANTS);
    }
    let made = topics.get(topic);
    if (!made) {
      made = {
        feed: { tenant, topic },
        subscription: { tenant, topic, queue: 'subscription' },
        deadLetter: { tenant, topic, queue: 'dead_letter' },
        maxDeliveries: { tenant, topic, reason: 'max_deliveries' },
        unreadable: { tenant, topic, reason: 'unreadable' },
        receiver: { tenant, topic, reason: 'receiver' },
      };
      setBounded(topics, topic, made, MAX_TOPICS_PER_TENANT);
    }
    return made;
  };
  const ofQueue = (tenant: string, topic: string, deadLetter: boolean): Attributes => {
    const feed = attributesOf(tenant, topic);
    return deadLetter ? feed.deadLetter : feed.subscription;
  };

  return {
    published(tenant, topic, bytes) {
      const { feed } = attributesOf(tenant, topic);
      batchesPublished.add(1, feed);
      bytesPublished.add(bytes, feed);
    },
    received(tenant, topic, deadLetter, bytes) {
      const attributes = ofQueue(tenant, topic, deadLetter);
      batchesReceived.add(1, attributes);
      bytesReceived.add(bytes, attributes);
    },
    completed: (tenant, topic, deadLetter) => batchesCompleted.add(1, ofQueue(tenant, topic, deadLetter)),
    abandoned: (tenant, topic, deadLetter) => batchesAbandoned.add(1, ofQueue(tenant, topic, deadLetter)),
    lockExpired: (tenant, topic, deadLetter) => locksExpired.add(1, ofQueue(tenant, topic, deadLetter)),
    deadLettered(tenant, topic, reason) {
      const feed = attributesOf(tenant, topic);
      batchesDeadLettered.add(1, reason === 'max_deliveries' ? feed.maxDeliveries : reason === 'unreadable' ? feed.unreadable : feed.receiver);
    },
  };
}

export interface SubscriptionQueue {
  topic: TopicRef;
  subscription: string;
}

/** queues whose depth one poll reports at most, and asks the broker for at once */
const MAX_DEPTH_QUEUES = 1000;
const DEPTHS_AT_ONCE = 8;
/** a queue whose depth takes longer is left out of that poll (a collection must not hang on the broker) */
const DEPTH_TIMEOUT_MS = 2000;

/**
 * keyway.topic.queue.depth {tenant, topic, subscription}: ready messages of each subscription queue
 * this instance declared, as the broker counts them (checkQueue's message count). The broker is asked
 * at most once per `pollMs`, when a collection (a scrape, an OTLP export) finds the last answer older;
 * collections in between reuse it, concurrent ones share one poll. A queue that is gone reads 0; one
 * whose depth cannot be had in time is not observed (its series keeps its last value, as the SDK
 * keeps an unobserved cumulative series). Every instance reports the queues it
 * declared: a dashboard takes the max per queue, not the sum. close() unregisters the callback.
 */
export function queueDepthGauge(broker: Pick<Broker, 'depth'>, queues: () => Iterable<SubscriptionQueue>, options: { pollMs: number; meter?: Meter }): { close(): void } {
  const meter = options.meter ?? metrics.getMeter('keyway.topic');
  const gauge = meter.createObservableGauge('keyway.topic.queue.depth', {
    description: 'ready messages in a subscription queue, by tenant, topic and subscription (polled, see QUEUE_DEPTH_POLL_SEC)',
  });
  let last: { at: number; depths: Array<[number, Attributes]> } | undefined;
  let polling: Promise<void> | undefined;

  const depthOf = async ({ topic, subscription }: SubscriptionQueue): Promise<number | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), DEPTH_TIMEOUT_MS);
    });
    try {
      // a queue that is gone holds nothing: 0, where leaving it out would keep its last depth showing
      // (an SDK keeps reporting a cumulative series it is no longer told about)
      const depth = broker.depth(topic, subscription).catch((err: unknown) => (err instanceof NoSubscriptionError ? 0 : undefined));
      return await Promise.race([depth, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  const poll = async (): Promise<void> => {
    const at = Date.now();
    const list: SubscriptionQueue[] = [];
    for (const queue of queues()) {
      if (list.length >= MAX_DEPTH_QUEUES) break;
      list.push(queue);
    }
    const depths = await inParallel(list, DEPTHS_AT_ONCE, depthOf);
    last = {
      at,
      depths: list.flatMap(({ topic, subscription }, i): Array<[number, Attributes]> => {
        const depth = depths[i];
        return depth === undefined ? [] : [[depth, { tenant: topic.tenant, topic: topic.topic, subscription }]];
      }),
    };
  };
  const observe = async (result: ObservableResult): Promise<void> => {
    if (last === undefined || Date.now() - last.at >= options.pollMs) {
      polling ??= poll().finally(() => {
        polling = undefined;
      });
      await polling;
    }
    for (const [depth, attributes] of last?.depths ?? []) result.observe(depth, attributes);
  };
  gauge.addCallback(observe);
  return { close: () => gauge.removeCallback(observe) };
}
