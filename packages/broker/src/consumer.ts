import { setTimeout as sleep } from 'node:timers/promises';
import type { Broker, Delivery, TopicRef } from './broker.ts';

export interface ConsumerOptions {
  /** long-poll wait per receive */
  waitMs?: number;
  onError?: (err: unknown) => void;
}

/** Errors that mean a dependency of ours is out of reach (the stable codes of store, database and broker outages). */
const OUTAGE_CODES = new Set(['ERR_STORE_UNAVAILABLE', 'ERR_DB_UNAVAILABLE', 'ERR_BROKER_UNAVAILABLE']);
const isOutage = (err: unknown) => OUTAGE_CODES.has(String((err as { code?: unknown } | null)?.code)) || (err as { status?: unknown } | null)?.status === 503;

/** In-place attempts at a failure that is not an outage (a bug, a record that does not parse) before the message goes back. */
const ATTEMPTS_BEFORE_REQUEUE = 5;

/**
 * Runs `decode` then `apply` for each message of a subscription, acking only after both succeed (at
 * least once). A message that does not decode goes back to the queue, so the broker's delivery limit
 * dead-letters it in the end. A failure to apply because a store, database or broker of ours is out of
 * reach is retried in place, with backoff, until it applies or the consumer stops: the message is held
 * meanwhile, so however long the outage lasts it never counts as a delivery and never dead-letters the
 * message. Any other failure (a bug) is retried a few times in place, then goes back to the queue like
 * a message that does not decode, so one bad event cannot hold up every later one. Survives broker
 * outages with backoff.
 */
function consume<T>(
  broker: Broker,
  topic: TopicRef,
  subscription: string,
  decode: (body: Buffer) => T,
  apply: (message: T, delivery: Delivery) => Promise<void>,
  options: ConsumerOptions = {},
): { stop(): Promise<void> } {
  const abort = new AbortController();
  const waitMs = options.waitMs ?? 2000;
  const pause = (ms: number) => sleep(ms, undefined, { signal: abort.signal }).catch(() => undefined);
  const nextBackoff = (ms: number) => Math.min(ms * 2, 5000);

  const applied = async (message: T, delivery: Delivery): Promise<void> => {
    for (let attempt = 1, backoffMs = 100; ; attempt += 1, backoffMs = nextBackoff(backoffMs)) {
      try {
        return await apply(message, delivery);
      } catch (err) {
        if (abort.signal.aborted || (!isOutage(err) && attempt >= ATTEMPTS_BEFORE_REQUEUE)) throw err;
        options.onError?.(err);
        await pause(backoffMs);
      }
    }
  };

  const loop = (async () => {
    let declared = false;
    let backoffMs = 100;
    while (!abort.signal.aborted) {
      let delivery: Delivery | null = null;
      try {
        if (!declared) {
          await broker.declareSubscription(topic, subscription);
          declared = true;
        }
        delivery = await broker.receive(topic, subscription, waitMs);
        if (delivery) {
          await applied(decode(delivery.body), delivery);
          await delivery.ack();
        }
        backoffMs = 100;
      } catch (err) {
        options.onError?.(err);
        await delivery?.nack(true).catch(() => undefined);
        await pause(backoffMs);
        backoffMs = nextBackoff(backoffMs);
      }
    }
  })();

  return {
    async stop() {
      abort.abort();
      await loop;
    },
  };
}

/** What consumeEvents checks each event with; a zod schema is one (its parse throws on a bad event). */
export interface EventSchema<T> {
  parse(value: unknown): T;
}

/**
 * consume() for JSON events: each body is decoded (UTF-8 JSON) and checked by `schema` before `handle`
 * sees it. A body that does not decode or check is returned to the queue (onError) and dead-lettered
 * at the delivery limit; a `handle` that throws is retried until it succeeds, never dead-lettered.
 */
export function consumeEvents<T>(
  broker: Broker,
  topic: TopicRef,
  subscription: string,
  schema: EventSchema<T>,
  handle: (event: T, delivery: Delivery) => Promise<void>,
  options: ConsumerOptions = {},
): { stop(): Promise<void> } {
  return consume(broker, topic, subscription, (body) => schema.parse(JSON.parse(body.toString('utf8'))), handle, options);
}
