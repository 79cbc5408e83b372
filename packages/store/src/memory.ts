import { incrStep, StoreUnavailableError } from './store.ts';
import type { LexBound, LexRange, SetOptions, Store, StoreWrite } from './store.ts';

export interface MemoryStoreOptions {
  prefix: string;
  /** clock for TTLs, injectable so tests can move time; default Date.now */
  now?: () => number;
}

type Value =
  | { kind: 'string'; value: string }
  | { kind: 'hash'; value: Map<string, string> }
  | { kind: 'set'; value: Set<string> }
  /** members kept sorted by their UTF-8 bytes, the order Redis uses for equal-score members */
  | { kind: 'zset'; value: string[] };
type Entry = Value & { expiresAt: number | undefined };

/** Shared by the root store and all its scoped views, like one Redis connection/keyspace. */
interface Keyspace {
  entries: Map<string, Entry>;
  now: () => number;
  closed: boolean;
}

// Same wording as Redis so callers that log errors see the same thing with either backend.
const wrongType = (): Error => new Error('WRONGTYPE Operation against a key holding the wrong kind of value');

// Redis compares lex members with memcmp over their bytes; UTF-16 order differs for some non-ASCII text.
const compareBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** index of the first member that is not below `member` (binary search) */
function lowerIndex(sorted: string[], member: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(sorted[mid] as string, member) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const aboveMin = (member: string, min: LexBound | undefined): boolean => min === undefined || (min.inclusive ? compareBytes(member, min.value) >= 0 : compareBytes(member, min.value) > 0);
const belowMax = (member: string, max: LexBound | undefined): boolean => max === undefined || (max.inclusive ? compareBytes(member, max.value) <= 0 : compareBytes(member, max.value) < 0);

const expiryFor = (now: number, ttlMs: number | undefined): number | undefined => (ttlMs === undefined ? undefined : now + Math.max(1, Math.ceil(ttlMs)));

class MemoryStore implements Store {
  constructor(
    private readonly space: Keyspace,
    readonly prefix: string,
    private readonly isRoot: boolean,
  ) {}

  scoped(sub: string): Store {
    return new MemoryStore(this.space, `${this.prefix}${sub}:`, false);
  }

  /** Runs `op` unless the store was closed; async so errors surface as rejections, like Redis. */
  private async run<T>(op: () => T): Promise<T> {
    if (this.space.closed) throw new StoreUnavailableError('memory store is closed');
    return op();
  }

  /** the live entry for `key`; expired entries are removed lazily on access */
  private entry(key: string): Entry | undefined {
    const full = this.prefix + key;
    const e = this.space.entries.get(full);
    if (e?.expiresAt !== undefined && e.expiresAt <= this.space.now()) {
      this.space.entries.delete(full);
      return undefined;
    }
    return e;
  }

  private stringValue(key: string): string | null {
    const e = this.entry(key);
    if (!e) return null;
    if (e.kind !== 'string') throw wrongType();
    return e.value;
  }

  private hashOf(key: string): Map<string, string> | undefined {
    const e = this.entry(key);
    if (e && e.kind !== 'hash') throw wrongType();
    return e?.value;
  }

  private setOf(key: string): Set<string> | undefined {
    const e = this.entry(key);
    if (e && e.kind !== 'set') throw wrongType();
    return e?.value;
  }

  private zsetOf(key: string): string[] | undefined {
    const e = this.entry(key);
    if (e && e.kind !== 'zset') throw wrongType();
    return e?.value;
  }

  private zaddNow(key: string, members: string[]): number {
    if (members.length === 0) return 0;
    let z = this.zsetOf(key);
    if (!z) {
      z = [];
      this.space.entries.set(this.prefix + key, { kind: 'zset', value: z, expiresAt: undefined });
    }
    let added = 0;
    for (const m of members) {
      const at = lowerIndex(z, m);
      if (z[at] === m) continue;
      z.splice(at, 0, m);
      added++;
    }
    return added;
  }

  private zremNow(key: string, members: string[]): number {
    const z = this.zsetOf(key);
    if (!z) return 0;
    let removed = 0;
    for (const m of members) {
      const at = lowerIndex(z, m);
      if (z[at] !== m) continue;
      z.splice(at, 1);
      removed++;
    }
    if (z.length === 0) this.space.entries.delete(this.prefix + key);
    return removed;
  }

  /** hdel / srem: Redis deletes a hash or set (and its TTL) once its last field or member is gone */
  private removeFrom(key: string, collection: { delete(item: string): boolean; readonly size: number } | undefined, items: string[]): number {
    if (!collection) return 0;
    let removed = 0;
    for (const item of items) if (collection.delete(item)) removed++;
    if (collection.size === 0) this.space.entries.delete(this.prefix + key);
    return removed;
  }

  private write(key: string, value: string, ttlMs: number | undefined): void {
    // like Redis SET: a plain write replaces the value and clears any previous TTL
    this.space.entries.set(this.prefix + key, { kind: 'string', value, expiresAt: expiryFor(this.space.now(), ttlMs) });
  }

  get(key: string): Promise<string | null> {
    return this.run(() => this.stringValue(key));
  }

  set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    return this.run(() => {
      if (options.ifAbsent && this.entry(key)) return false;
      this.write(key, value, options.ttlMs);
      return true;
    });
  }

  del(...keys: string[]): Promise<number> {
    return this.run(() => {
      let removed = 0;
      for (const key of new Set(keys)) {
        if (this.entry(key)) {
          this.space.entries.delete(this.prefix + key);
          removed++;
        }
      }
      return removed;
    });
  }

  compareAndSet(key: string, expected: string | null, next: string, options: { ttlMs?: number } = {}): Promise<boolean> {
    return this.run(() => {
      const e = this.entry(key);
      if (expected === null ? e !== undefined : this.stringValue(key) !== expected) return false;
      this.write(key, next, options.ttlMs);
      return true;
    });
  }

  take(key: string): Promise<string | null> {
    return this.run(() => {
      const value = this.stringValue(key);
      if (value !== null) this.space.entries.delete(this.prefix + key);
      return value;
    });
  }

  async incr(key: string, options: { ttlMs?: number; by?: number } = {}): Promise<number> {
    const by = incrStep(options.by);
    return this.run(() => {
      const e = this.entry(key);
      if (!e) {
        this.write(key, String(by), options.ttlMs);
        return by;
      }
      if (e.kind !== 'string') throw wrongType();
      if (!/^-?\d+$/.test(e.value)) throw new Error('ERR value is not an integer or out of range');
      const n = Number(e.value) + by;
      e.value = String(n); // keeps the existing TTL, like INCR
      return n;
    });
  }

  ttl(key: string): Promise<number> {
    return this.run(() => {
      const e = this.entry(key);
      if (!e) return -2;
      return e.expiresAt === undefined ? -1 : e.expiresAt - this.space.now();
    });
  }

  hset(key: string, fields: Record<string, string>): Promise<void> {
    return this.run(() => {
      const pairs = Object.entries(fields);
      if (pairs.length === 0) return;
      let h = this.hashOf(key);
      if (!h) {
        h = new Map();
        this.space.entries.set(this.prefix + key, { kind: 'hash', value: h, expiresAt: undefined });
      }
      for (const [field, value] of pairs) h.set(field, value);
    });
  }

  hget(key: string, field: string): Promise<string | null> {
    return this.run(() => this.hashOf(key)?.get(field) ?? null);
  }

  hgetall(key: string): Promise<Record<string, string>> {
    return this.run(() => Object.fromEntries(this.hashOf(key) ?? []));
  }

  hdel(key: string, ...fields: string[]): Promise<number> {
    return this.run(() => this.removeFrom(key, this.hashOf(key), fields));
  }

  sadd(key: string, ...members: string[]): Promise<number> {
    return this.run(() => {
      if (members.length === 0) return 0;
      let s = this.setOf(key);
      if (!s) {
        s = new Set();
        this.space.entries.set(this.prefix + key, { kind: 'set', value: s, expiresAt: undefined });
      }
      const before = s.size;
      for (const m of members) s.add(m);
      return s.size - before;
    });
  }

  srem(key: string, ...members: string[]): Promise<number> {
    return this.run(() => this.removeFrom(key, this.setOf(key), members));
  }

  smembers(key: string): Promise<string[]> {
    return this.run(() => [...(this.setOf(key) ?? [])]);
  }

  sismember(key: string, member: string): Promise<boolean> {
    return this.run(() => this.setOf(key)?.has(member) ?? false);
  }

  zadd(key: string, ...members: string[]): Promise<number> {
    return this.run(() => this.zaddNow(key, members));
  }

  zrem(key: string, ...members: string[]): Promise<number> {
    return this.run(() => this.zremNow(key, members));
  }

  zrangeByLex(key: string, range: LexRange = {}): Promise<string[]> {
    return this.run(() => {
      const inRange = (this.zsetOf(key) ?? []).filter((m) => aboveMin(m, range.min) && belowMax(m, range.max));
      if (range.reverse) inRange.reverse();
      return range.limit === undefined ? inRange : inRange.slice(0, Math.max(0, range.limit));
    });
  }

  commitIf(guard: { key: string; expected: string | null }, writes: StoreWrite[]): Promise<boolean> {
    return this.run(() => {
      if (this.stringValue(guard.key) !== guard.expected) return false;
      // check every write before applying any, so a wrong type leaves nothing half-written (as the Lua does)
      for (const w of writes) if (w.op === 'zadd' || w.op === 'zrem') this.zsetOf(w.key);
      for (const w of writes) {
        if (w.op === 'set') this.write(w.key, w.value, w.ttlMs);
        else if (w.op === 'del') this.space.entries.delete(this.prefix + w.key);
        else if (w.op === 'zadd') this.zaddNow(w.key, w.members);
        else this.zremNow(w.key, w.members);
      }
      return true;
    });
  }

  keys(keyPrefix: string): Promise<string[]> {
    return this.run(() => {
      const full = this.prefix + keyPrefix;
      const result: string[] = [];
      for (const stored of [...this.space.entries.keys()]) {
        if (!stored.startsWith(full)) continue;
        const key = stored.slice(this.prefix.length);
        if (this.entry(key)) result.push(key);
      }
      return result;
    });
  }

  ping(): Promise<void> {
    return this.run(() => undefined);
  }

  async close(): Promise<void> {
    // mirrors the Redis store: only the root owns the keyspace; afterwards every view is unavailable
    if (this.isRoot) this.space.closed = true;
  }
}

/** The embedded store for when REDIS_URL is not configured; same semantics as the Redis store. */
export function createMemoryStore(options: MemoryStoreOptions): Store {
  return new MemoryStore({ entries: new Map(), now: options.now ?? Date.now, closed: false }, options.prefix, true);
}
