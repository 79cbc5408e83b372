import { TooManyRequests } from './errors.ts';

/**
 * The counter operations a limiter needs: the shared store (`@keyway/store`, Redis or in-memory) has
 * them, so every instance of a service counts in one place. Structural, so the kit needs no store.
 */
export interface CounterStore {
  get(key: string): Promise<string | null>;
  /** atomic increment; sets the TTL when the key is created by this call (INCR + PEXPIRE in one script) */
  incr(key: string, options?: { ttlMs?: number }): Promise<number>;
  /** remaining TTL in ms, -1 without TTL, -2 when absent */
  ttl(key: string): Promise<number>;
  set(key: string, value: string, options?: { ttlMs?: number; ifAbsent?: boolean }): Promise<boolean>;
  del(...keys: string[]): Promise<number>;
}

export interface WindowRule {
  /** names the counters (`rl:<name>:<key>`) and the throttling event */
  name: string;
  /** hits allowed per window; the next one is refused until the window ends */
  points: number;
  windowMs: number;
}

export interface LimitState {
  allowed: boolean;
  /** hits counted in the current window */
  count: number;
  /** until the window ends (whole seconds, at least 1): the Retry-After of a refusal */
  retryAfterSec: number;
  /**
   * true for exactly one refusal per key and window, across every instance: whoever sees it records the
   * throttling event, so a flood of refusals is one event, not one per refused attempt.
   */
  firstRefusal: boolean;
}

/**
 * A fixed-window counter in the shared store (the classic INCR + EXPIRE limiter; rate-limiter-flexible's
 * RateLimiterRedis with `blockDuration: 0` behaves the same). A window starts with its first hit and
 * lasts `windowMs`: a key over its points is refused until then and no longer, so a block is never
 * longer than one window. Fails closed: a store that cannot be reached throws (the caller answers 503).
 */
export function windowLimiter(store: CounterStore, rule: WindowRule) {
  const counter = (key: string) => `rl:${rule.name}:${key}`;
  const marker = (key: string) => `rl:${rule.name}:${key}:refused`;
  const retryAfter = async (key: string) => {
    const ms = await store.ttl(counter(key));
    return Math.max(1, Math.ceil((ms > 0 ? ms : rule.windowMs) / 1000));
  };
  const refused = async (key: string, count: number): Promise<LimitState> => {
    const retryAfterSec = await retryAfter(key);
    const firstRefusal = await store.set(marker(key), '1', { ttlMs: retryAfterSec * 1000, ifAbsent: true });
    return { allowed: false, count, retryAfterSec, firstRefusal };
  };
  return {
    rule,
    /** counts a hit; refused once the window holds more than `points` */
    async hit(key: string): Promise<LimitState> {
      const count = await store.incr(counter(key), { ttlMs: rule.windowMs });
      if (count <= rule.points) return { allowed: true, count, retryAfterSec: 0, firstRefusal: false };
      return refused(key, count);
    },
    /** whether a hit would be refused now, counting nothing (for limits on failures, counted after the fact) */
    async check(key: string): Promise<LimitState> {
      const count = Number((await store.get(counter(key))) ?? 0);
      if (count < rule.points) return { allowed: true, count, retryAfterSec: 0, firstRefusal: false };
      return refused(key, count);
    },
    /** forgets the key's window (e.g. a successful login ends its run of failures) */
    async reset(key: string): Promise<void> {
      await store.del(counter(key), marker(key));
    },
  };
}
export type WindowLimiter = ReturnType<typeof windowLimiter>;

/** RFC 6585 §4 and RFC 9110 §10.2.3: 429 with Retry-After, in the OAuth error shape. */
export function tooManyRequests(state: Pick<LimitState, 'retryAfterSec'>, detail: string, description = 'too many attempts; retry later'): InstanceType<typeof TooManyRequests> {
  return new TooManyRequests(description, detail, { 'Retry-After': String(state.retryAfterSec) });
}

/**
 * A bound on concurrent work with a small bounded queue: at most `concurrency` tasks run, at most
 * `queue` wait (each at most `maxWaitMs`); anything beyond is refused at once with `onFull()`, so a
 * flood is answered fast instead of queueing without bound and starving everything else.
 */
export function boundedConcurrency(options: { concurrency: number; queue: number; maxWaitMs: number; onFull: () => Error }) {
  let running = 0;
  const waiting: Array<{ start: () => void; timer: NodeJS.Timeout }> = [];
  const release = () => {
    running -= 1;
    const next = waiting.shift();
    if (next) {
      clearTimeout(next.timer);
      next.start();
    }
  };
  return {
    get running() {
      return running;
    },
    get waiting() {
      return waiting.length;
    },
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (running >= options.concurrency) {
        if (waiting.length >= options.queue) throw options.onFull();
        await new Promise<void>((resolve, reject) => {
          const entry = {
            start: () => resolve(),
            timer: setTimeout(() => {
              waiting.splice(waiting.indexOf(entry), 1);
              reject(options.onFull());
            }, options.maxWaitMs),
          };
          waiting.push(entry);
        });
      }
      running += 1;
      try {
        return await task();
      } finally {
        release();
      }
    },
  };
}
