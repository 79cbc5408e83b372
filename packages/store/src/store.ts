/**
 * The one storage interface every service uses. Implementations: Redis (ioredis), an embedded
 * in-memory store used when REDIS_URL is not configured, and PostgreSQL/PGlite for durable records
 * (postgres.ts). Every key is scoped under the
 * store's prefix, so services never read each other's keys.
 */
export interface SetOptions {
  /** expire the key after this many milliseconds */
  ttlMs?: number;
  /** only set when the key does not exist (SET NX) */
  ifAbsent?: boolean;
}

/** One write inside `commitIf`; keys are relative to the store's prefix like every other call. */
export type StoreWrite =
  | { op: 'set'; key: string; value: string; ttlMs?: number }
  | { op: 'del'; key: string }
  | { op: 'zadd'; key: string; members: string[] }
  | { op: 'zrem'; key: string; members: string[] };

/** One end of a `zrangeByLex` range; absent means unbounded (Redis `-` / `+`). */
export interface LexBound {
  value: string;
  inclusive: boolean;
}

export interface LexRange {
  min?: LexBound;
  max?: LexBound;
  /** from `max` down to `min` (ZREVRANGEBYLEX) */
  reverse?: boolean;
  limit?: number;
}

export interface Store {
  /** the full key prefix, e.g. "keyway:pas:" */
  readonly prefix: string;
  /** a view of the same connection under `${prefix}${sub}:` */
  scoped(sub: string): Store;

  get(key: string): Promise<string | null>;
  /** returns false only when ifAbsent was set and the key already existed */
  set(key: string, value: string, options?: SetOptions): Promise<boolean>;
  /** number of keys removed */
  del(...keys: string[]): Promise<number>;
  /** atomic: set `key` to `next` only if its current value equals `expected` (null = absent). */
  compareAndSet(key: string, expected: string | null, next: string, options?: { ttlMs?: number }): Promise<boolean>;
  /** atomic get-and-delete (GETDEL); null when absent */
  take(key: string): Promise<string | null>;
  /** atomic increment by `by` (1 unless given, a positive integer); sets the TTL when the key is created by this call */
  incr(key: string, options?: { ttlMs?: number; by?: number }): Promise<number>;
  /** remaining TTL in ms, -1 when the key has no TTL, -2 when absent */
  ttl(key: string): Promise<number>;

  hset(key: string, fields: Record<string, string>): Promise<void>;
  hget(key: string, field: string): Promise<string | null>;
  hgetall(key: string): Promise<Record<string, string>>;
  hdel(key: string, ...fields: string[]): Promise<number>;

  sadd(key: string, ...members: string[]): Promise<number>;
  srem(key: string, ...members: string[]): Promise<number>;
  smembers(key: string): Promise<string[]>;
  sismember(key: string, member: string): Promise<boolean>;

  /**
   * Lexicographically ordered sets (ZADD with every score 0): members sort by their bytes, so a
   * member that starts with a fixed-width sortable id is an index in id order. Returns the number added.
   */
  zadd(key: string, ...members: string[]): Promise<number>;
  zrem(key: string, ...members: string[]): Promise<number>;
  /** members within the range in byte order (ZRANGEBYLEX / ZREVRANGEBYLEX), at most `limit` */
  zrangeByLex(key: string, range?: LexRange): Promise<string[]>;

  /**
   * Atomic guarded multi-write: when `guard.key` holds `guard.expected` (null = absent), apply every
   * write in order and return true; otherwise write nothing and return false. A write that cannot
   * apply (wrong type) rejects before anything is written. Other callers never see a partial commit.
   */
  commitIf(guard: { key: string; expected: string | null }, writes: StoreWrite[]): Promise<boolean>;

  /** keys (without the prefix) that start with `keyPrefix`; for admin listing, not hot paths */
  keys(keyPrefix: string): Promise<string[]>;

  /** throws when the backing store does not answer (used by /readyz and to fail closed) */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Thrown (by every method) when the backing store cannot be reached; callers map it to 503. */
/** Store.incr's step: a positive safe integer, else RangeError (a step of 0 or less would let a counter go back). */
export function incrStep(by = 1): number {
  if (!Number.isSafeInteger(by) || by < 1) throw new RangeError(`incr: the step must be a positive integer, got ${by}`);
  return by;
}

export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  readonly code = 'ERR_STORE_UNAVAILABLE';
}
