import { TemporarilyUnavailable, TooManyRequests } from '@keyway/kit';
import { NoSubscriptionError, type Broker, type TopicRef } from '@keyway/broker';
import { StoreUnavailableError, type Store } from '@keyway/store';
import { forgetOnFailure, setBounded } from '../bounded-cache.ts';
import { brokerCall, RETRY_AFTER_SEC } from '../delivery/broker-errors.ts';
import type { SubscriptionRegistry } from '../delivery/subscriptions.ts';

/**
 * Redis down means 503 with Retry-After: a quota (or a duplicate check) that cannot be made is not
 * granted (fail closed). `description` says what could not be checked.
 */
export async function storeCall<T>(call: () => Promise<T>, description = 'the publish quota cannot be checked right now, retry later'): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof StoreUnavailableError) {
      throw new TemporarilyUnavailable(description, err.message, { 'Retry-After': String(RETRY_AFTER_SEC) });
    }
    throw err;
  }
}

/** a counter outlives its window a little, so an instance with a slightly late clock still finds it */
const COUNTER_GRACE_MS = 5000;
/** Tenants are few, but bound the local allowances anyway (one entry per tenant that published lately). */
const MAX_TENANTS = 10_000;

/** This instance's share of one tenant's current window: slots taken from the shared counter, not yet used. */
interface Allowance {
  window: number;
  left: number;
  /** the next chunk's size: doubles with demand, up to the cap */
  chunk: number;
  /** the counter passed the burst: nothing more this window */
  spent: boolean;
  taking?: Promise<void>;
}

/**
 * Per-tenant publish rate, shared by every topic-service instance through the store: a fixed-window
 * counter. A window lasts burst / ratePerSec seconds and admits `burst` batches, so a tenant may send
 * `burst` at once and `ratePerSec` on average.
 *
 * An instance takes its slots from the counter in chunks (1, 2, 4, … up to burst / 50 per round trip)
 * rather than one INCR per publish (a store round trip on every publish was the profile's 3-4 %,
 * issue 12). The counter is still the only source of slots, so all instances together never admit
 * more than `burst` in a window; a chunk an instance took but did not use before the window ended
 * is lost to the others, at most burst / 50 - 1 per instance and window (so 7 of 400 by default).
 * Concurrent publishes wait for one round trip, and a store that cannot count refuses (503).
 */
export function publishRateLimit(store: Store, options: { ratePerSec: number; burst: number; now: () => number }) {
  const { ratePerSec, burst, now } = options;
  const windowMs = Math.max(1, Math.round((1000 * burst) / ratePerSec));
  const maxChunk = Math.max(1, Math.floor(burst / 50));
  const allowances = new Map<string, Allowance>();

  const take = async (tenant: string, allowance: Allowance): Promise<void> => {
    const by = allowance.chunk;
    const count = await storeCall(() => store.incr(`rate:${tenant}:${allowance.window}`, { ttlMs: windowMs + COUNTER_GRACE_MS, by }));
    // this call's slots are count - by + 1 … count; those past the burst belong to nobody
    const granted = Math.max(0, Math.min(by, burst - (count - by)));
    allowance.left += granted;
    allowance.spent = count >= burst;
    allowance.chunk = Math.min(maxChunk, by * 2);
  };

  return async function admit(tenant: string): Promise<void> {
    for (;;) {
      const at = now();
      const window = Math.floor(at / windowMs);
      let allowance = allowances.get(tenant);
      if (allowance?.window !== window) {
        allowance = { window, left: 0, chunk: 1, spent: false };
        setBounded(allowances, tenant, allowance, MAX_TENANTS);
      }
      if (allowance.left > 0) {
        allowance.left -= 1;
        return;
      }
      if (allowance.spent) {
        const retryAfterSec = Math.max(1, Math.ceil(((window + 1) * windowMs - at) / 1000));
        throw new TooManyRequests(
          `the tenant publishes more than ${ratePerSec} batches per second (burst ${burst}); nothing was published, retry after ${retryAfterSec} s`,
          `tenant ${tenant}: the ${burst} publishes of a ${windowMs} ms window are taken`,
          { 'Retry-After': String(retryAfterSec) },
        );
      }
      const current = allowance;
      current.taking ??= take(tenant, current).finally(() => {
        current.taking = undefined;
      });
      // then look again: a slot of this chunk, a refusal, or a new window
      await current.taking;
    }
  };
}

/** How long the depths of a topic's subscriptions are reused: publish pays no broker round trip per batch. */
export const DEPTH_CACHE_MS = 1000;
/** Topic names are caller-chosen; bound the cache so made-up names cannot grow it without end. */
const MAX_TOPICS = 10_000;

interface Full {
  subscription: string;
  depth: number;
}

/**
 * Backpressure, per subscription (issue 9): each subscription queue holds at most maxDepth ready
 * messages (the broker's x-max-length; beyond it the oldest go to the subscription's dead letters),
 * so one subscription that stopped receiving never blocks publishing for the others. Only when every
 * subscription of the topic is full, i.e. nobody reads it at all, is a publish refused, so the
 * producer keeps its batches rather than the broker dropping them. Depths are looked up once per
 * DEPTH_CACHE_MS per topic and shared by concurrent publishes; a failed lookup is not cached.
 */
export function queueDepthLimit(broker: Broker, subscriptions: SubscriptionRegistry, options: { maxDepth: number; now: () => number }) {
  const { maxDepth, now } = options;
  const entries = new Map<string, { at: number; full: Promise<Full | undefined> }>();

  const lookup = async (topic: TopicRef): Promise<Full | undefined> => {
    const names = await storeCall(() => subscriptions.names(topic));
    const depths = await brokerCall(() =>
      Promise.all(
        // a recorded subscription whose queue is gone (expired, deleted) receives nothing: left out
        names.map((name) => broker.depth(topic, name).catch((err: unknown) => (err instanceof NoSubscriptionError ? undefined : Promise.reject(err)))),
      ),
    );
    const existing = depths.flatMap((depth, i) => (depth === undefined ? [] : [{ subscription: names[i] ?? '', depth }]));
    if (existing.length === 0 || existing.some(({ depth }) => depth < maxDepth)) return undefined;
    return existing[0];
  };

  return async function check(topic: TopicRef): Promise<void> {
    const k = `${topic.tenant}/${topic.topic}`;
    let entry = entries.get(k);
    if (!entry || now() - entry.at >= DEPTH_CACHE_MS) {
      const fresh = { at: now(), full: lookup(topic) };
      setBounded(entries, k, fresh, MAX_TOPICS);
      forgetOnFailure(entries, k, fresh, fresh.full);
      entry = fresh;
    }
    const full = await entry.full;
    if (full) {
      throw new TooManyRequests(
        `every subscription of the topic is full (${full.subscription} holds ${full.depth} ready messages, the most allowed is ${maxDepth}); nothing was published, retry after ${RETRY_AFTER_SEC} s`,
        `topic ${k}`,
        { 'Retry-After': String(RETRY_AFTER_SEC) },
      );
    }
  };
}
