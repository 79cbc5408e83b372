import { setTimeout as sleep } from 'node:timers/promises';
import type { Broker, Delivery, TopicRef } from './broker.ts';

export interface ConsumerOptions {
  /** long-poll wait per receive */
  waitMs?: number;
  onError?: (err: unknown) => void;
}

/**
 * Runs `handle` for each message of a subscription, acking only after it succeeds; a failure
 * returns the message for another try (at least once). Survives broker outages with backoff.
 */
function consume(broker: Broker, topic: TopicRef, subscription: string, handle: (body: Buffer, delivery: Delivery) => Promise<void>, options: ConsumerOptions = {}): { stop(): Promise<void> } {
  const abort = new AbortController();
  const waitMs = options.waitMs ?? 2000;
  const pause = (ms: number) => sleep(ms, undefined, { signal: abort.signal }).catch(() => undefined);

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
          await handle(delivery.body, delivery);
          await delivery.ack();
        }
        backoffMs = 100;
      } catch (err) {
        options.onError?.(err);
        await delivery?.nack(true).catch(() => undefined);
        await pause(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5000);
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
 * sees it. A body that does not decode or check fails like any other handling: onError, then another try.
 */
export function consumeEvents<T>(
  broker: Broker,
  topic: TopicRef,
  subscription: string,
  schema: EventSchema<T>,
  handle: (event: T, delivery: Delivery) => Promise<void>,
  options: ConsumerOptions = {},
): { stop(): Promise<void> } {
  return consume(broker, topic, subscription, async (body, delivery) => handle(schema.parse(JSON.parse(body.toString('utf8'))), delivery), options);
}
