import { setTimeout as sleep } from 'node:timers/promises';
import type { Broker, Delivery, TopicRef } from './broker.ts';

export interface ConsumerOptions {
  /** long-poll wait per receive */
  waitMs?: number;
  onError?: (err: unknown) => void;
}

/**
 * Runs `decode` then `apply` for each message of a subscription, acking only after both succeed (at
 * least once). A message that does not decode goes back to the queue, so the broker's delivery limit
 * dead-letters it in the end. A failure to apply is retried in place, with backoff, until it applies
 * or the consumer stops: the message is held meanwhile, so however long our own store is down the
 * failure never counts as a delivery and never dead-letters the message. Survives broker outages with
 * backoff.
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
    for (let backoffMs = 100; ; backoffMs = nextBackoff(backoffMs)) {
      try {
        return await apply(message, delivery);
      } catch (err) {
        if (abort.signal.aborted) throw err;
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
