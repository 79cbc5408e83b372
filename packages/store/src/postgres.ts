import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { DbUnavailableError, identifier, type Db, type Queryable } from '@keyway/db';
import { incrStep, StoreUnavailableError } from './store.ts';
import type { LexRange, SetOptions, Store, StoreWrite } from './store.ts';

export interface PgStoreOptions {
  /** lent by the caller, who closes it; the store never does */
  db: Db;
  /** the service's schema holding store_keys / store_members (0002_records.sql), e.g. keyway_pas */
  schema: string;
  prefix: string;
  /** how often expired rows are deleted (they are invisible from the moment they expire); default 60 s */
  sweepIntervalMs?: number;
  /** receives sweep failures, which are otherwise dropped (the next sweep tries again) */
  onError?: (err: Error) => void;
}

/** A Store whose calls can be grouped into one database transaction (the transactional outbox). */
export type RecordStore = Store & {
  /**
   * Every call on this store and its scoped views made inside `fn` runs in one transaction, committed
   * when `fn` resolves and rolled back when it throws; a nested call joins the outer transaction.
   */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
};

type Kind = 'string' | 'hash' | 'set' | 'zset';
type Bytes = Uint8Array;
interface Entry {
  kind: Kind;
  value: Bytes | null;
}

/** Shared by the root store and its scoped views, like one Redis connection. */
interface Backend {
  db: Db;
  keys: string;
  members: string;
  /** the schema, mixed into advisory lock ids so two services' stores never wait on each other */
  schema: string;
  /** the open transaction of the current async context, if any */
  tx: AsyncLocalStorage<Queryable>;
  closed: boolean;
  sweep: NodeJS.Timeout | undefined;
}

const wrongType = (): Error => new Error('WRONGTYPE Operation against a key holding the wrong kind of value');

// Parameters travel as hex text and are decoded in SQL: one encoding both pg and PGlite pass unchanged
// (arrays included), and bytea keeps NUL bytes that text cannot hold.
const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');
const utf8 = (b: Bytes): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');

const ttlParam = (ttlMs: number | undefined): number | null => (ttlMs === undefined ? null : Math.max(1, Math.ceil(ttlMs)));

/** The smallest byte string above every string that starts with `prefix`; null when there is none (all 0xff). */
function prefixEnd(prefix: string): string | null {
  const bytes = Buffer.from(prefix, 'utf8');
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0xff) end--;
  if (end === 0) return null;
  const next = Buffer.from(bytes.subarray(0, end));
  next[end - 1] = (next[end - 1] as number) + 1;
  return next.toString('hex');
}

const LIVE = '(expires_at IS NULL OR expires_at > clock_timestamp())';

function toStoreError(err: unknown): unknown {
  if (err instanceof DbUnavailableError) return new StoreUnavailableError(`database unavailable: ${err.message}`, { cause: err });
  return err;
}

class PgStore implements RecordStore {
  constructor(
    private readonly b: Backend,
    readonly prefix: string,
    private readonly isRoot: boolean,
  ) {}

  private k(key: string): string {
    return hex(this.prefix + key);
  }

  scoped(sub: string): Store {
    return new PgStore(this.b, `${this.prefix}${sub}:`, false);
  }

  private live(): void {
    if (this.b.closed) throw new StoreUnavailableError('record store is closed');
  }

  /** One statement, in the current transaction when there is one. */
  private async read<R extends Record<string, unknown>>(sql: string, params: unknown[]): Promise<R[]> {
    this.live();
    try {
      return await (this.b.tx.getStore() ?? this.b.db).query<R>(sql, params);
    } catch (err) {
      throw toStoreError(err);
    }
  }

  /**
   * Runs `fn` in a transaction holding an advisory lock per key, so read-then-write steps on a key
   * (absent keys included, which row locks cannot cover) never interleave across connections or
   * processes. Inside transaction() it joins that transaction and the locks last until it ends.
   */
  private async atomic<T>(keys: string[], fn: (q: Queryable) => Promise<T>): Promise<T> {
    this.live();
    const ids = [...new Set(keys.map((key) => createHash('sha256').update(`${this.b.schema}\0${this.prefix}${key}`).digest().readBigInt64BE(0)))].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    const body = async (q: Queryable): Promise<T> => {
      // taken in id order (unnest keeps the array's order), so two multi-key writers cannot deadlock
      await q.query('SELECT pg_advisory_xact_lock(id) FROM unnest($1::int8[]) AS t (id)', [ids.map(String)]);
      return fn(q);
    };
    try {
      const outer = this.b.tx.getStore();
      return await (outer ? body(outer) : this.b.db.transaction(body));
    } catch (err) {
      throw toStoreError(err);
    }
  }

  /**
   * The live entries of `keys` by key (expired ones are deleted here); call under atomic() only. FOR
   * UPDATE because the one-statement writes (updateString, take) change existing rows without the
   * advisory lock: the row lock keeps them out until this transaction ends.
   */
  private async entries(q: Queryable, keys: string[]): Promise<Map<string, Entry>> {
    const rows = await q.query<{ key: Bytes; kind: Kind; value: Bytes | null; expired: boolean | null }>(
      `SELECT key, kind, value, expires_at <= clock_timestamp() AS expired FROM ${this.b.keys} WHERE key = ANY (SELECT decode(k, 'hex') FROM unnest($1::text[]) AS t (k)) FOR UPDATE`,
      [keys.map((key) => this.k(key))],
    );
    const expired = rows.filter((r) => r.expired).map((r) => r.key);
    if (expired.length > 0)
      await q.query(`DELETE FROM ${this.b.keys} WHERE key = ANY (SELECT decode(k, 'hex') FROM unnest($1::text[]) AS t (k))`, [expired.map((key) => Buffer.from(key).toString('hex'))]);
    return new Map(rows.filter((r) => !r.expired).map((r) => [utf8(r.key).slice(this.prefix.length), { kind: r.kind, value: r.value }]));
  }

  private async entry(q: Queryable, key: string): Promise<Entry | undefined> {
    return (await this.entries(q, [key])).get(key);
  }

  /** whether `key` exists, throwing WRONGTYPE when it holds another kind than `kind` */
  private async kindOf(q: Queryable, key: string, kind: Kind): Promise<boolean> {
    const e = await this.entry(q, key);
    if (e && e.kind !== kind) throw wrongType();
    return e !== undefined;
  }

  /**
   * Like Redis SET: replaces a key of any kind (dropping a collection's members) and sets or clears
   * its TTL. Safe in one statement because every writer of the key holds its advisory lock.
   */
  private async writeString(q: Queryable, key: string, value: string, ttlMs: number | undefined): Promise<void> {
    await q.query(
      `WITH dropped AS (DELETE FROM ${this.b.members} WHERE key = decode($1, 'hex'))
       INSERT INTO ${this.b.keys} (key, kind, value, expires_at)
       VALUES (decode($1, 'hex'), 'string', decode($2, 'hex'), clock_timestamp() + $3::float8 * interval '1 millisecond')
       ON CONFLICT (key) DO UPDATE SET kind = 'string', value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
      [this.k(key), hex(value), ttlParam(ttlMs)],
    );
  }

  /** adds members (hash fields with `values`) to a collection that `exists` or is created here */
  private async addMembers(q: Queryable, key: string, kind: Kind, exists: boolean, members: string[], values?: string[]): Promise<number> {
    if (!exists) await q.query(`INSERT INTO ${this.b.keys} (key, kind) VALUES (decode($1, 'hex'), $2)`, [this.k(key), kind]);
    const upsert = values ? 'DO UPDATE SET value = EXCLUDED.value' : 'DO NOTHING';
    const rows = await q.query(
      `INSERT INTO ${this.b.members} (key, member, value)
       SELECT decode($1, 'hex'), decode(m, 'hex'), decode(v, 'hex') FROM unnest($2::text[], $3::text[]) AS t (m, v)
       ON CONFLICT (key, member) ${upsert} RETURNING 1`,
      [this.k(key), members.map(hex), values ? values.map(hex) : members.map(() => null)],
    );
    return rows.length;
  }

  /** removes members (hash fields) of an existing collection; like Redis, one left empty no longer exists */
  private async removeMembers(q: Queryable, key: string, members: string[]): Promise<{ removed: number; emptied: boolean }> {
    const removed = await q.query(`DELETE FROM ${this.b.members} WHERE key = decode($1, 'hex') AND member = ANY (SELECT decode(m, 'hex') FROM unnest($2::text[]) AS t (m)) RETURNING 1`, [
      this.k(key),
      members.map(hex),
    ]);
    const emptied = await q.query(`DELETE FROM ${this.b.keys} k WHERE key = decode($1, 'hex') AND NOT EXISTS (SELECT 1 FROM ${this.b.members} m WHERE m.key = k.key) RETURNING 1`, [this.k(key)]);
    return { removed: removed.length, emptied: emptied.length > 0 };
  }

  private addTo(key: string, kind: Kind, members: string[], values?: string[]): Promise<number> {
    if (members.length === 0) return Promise.resolve(0);
    return this.atomic([key], async (q) => this.addMembers(q, key, kind, await this.kindOf(q, key, kind), members, values));
  }

  private removeFrom(key: string, kind: Kind, members: string[]): Promise<number> {
    if (members.length === 0) return Promise.resolve(0);
    return this.atomic([key], async (q) => ((await this.kindOf(q, key, kind)) ? (await this.removeMembers(q, key, members)).removed : 0));
  }

  /** the live collection's members (and values) matching `where`; none when absent, WRONGTYPE when another kind */
  private async membersOf(key: string, kind: Kind, where = '', params: unknown[] = [], tail = ''): Promise<{ member: Bytes; value: Bytes | null }[]> {
    const rows = await this.read<{ kind: Kind; member: Bytes | null; value: Bytes | null }>(
      `SELECT k.kind, m.member, m.value FROM ${this.b.keys} k LEFT JOIN ${this.b.members} m ON m.key = k.key ${where}
       WHERE k.key = decode($1, 'hex') AND ${LIVE} ${tail}`,
      [this.k(key), ...params],
    );
    if (rows[0] && rows[0].kind !== kind) throw wrongType();
    return rows.filter((r): r is { kind: Kind; member: Bytes; value: Bytes | null } => r.member !== null);
  }

  async get(key: string): Promise<string | null> {
    const [row] = await this.read<{ kind: Kind; value: Bytes | null }>(`SELECT kind, value FROM ${this.b.keys} WHERE key = decode($1, 'hex') AND ${LIVE}`, [this.k(key)]);
    if (!row) return null;
    if (row.kind !== 'string' || row.value === null) throw wrongType();
    return utf8(row.value);
  }

  /**
   * The common case in one statement: a live string key (`expected` null = any value) gets a new value
   * and TTL. Only ever updates an existing row, so it cannot race the locked writers that create keys,
   * and the row lock it takes orders it with them. False means "not the common case": use the locked path.
   */
  private async updateString(key: string, expected: string | null, value: string, ttlMs: number | undefined): Promise<boolean> {
    const rows = await this.read(
      `UPDATE ${this.b.keys} SET value = decode($2, 'hex'), expires_at = clock_timestamp() + $3::float8 * interval '1 millisecond'
       WHERE key = decode($1, 'hex') AND kind = 'string' AND ($4::text IS NULL OR value = decode($4, 'hex')) AND ${LIVE} RETURNING 1`,
      [this.k(key), hex(value), ttlParam(ttlMs), expected === null ? null : hex(expected)],
    );
    return rows.length > 0;
  }

  async set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    if (!options.ifAbsent && (await this.updateString(key, null, value, options.ttlMs))) return true;
    return this.atomic([key], async (q) => {
      if (options.ifAbsent && (await this.entry(q, key))) return false;
      await this.writeString(q, key, value, options.ttlMs);
      return true;
    });
  }

  del(...keys: string[]): Promise<number> {
    if (keys.length === 0) return Promise.resolve(0);
    return this.atomic(keys, async (q) => {
      const rows = await q.query<{ live: boolean }>(`DELETE FROM ${this.b.keys} WHERE key = ANY (SELECT decode(k, 'hex') FROM unnest($1::text[]) AS t (k)) RETURNING ${LIVE} AS live`, [
        [...new Set(keys)].map((key) => this.k(key)),
      ]);
      return rows.filter((r) => r.live).length;
    });
  }

  async compareAndSet(key: string, expected: string | null, next: string, options: { ttlMs?: number } = {}): Promise<boolean> {
    if (expected !== null && (await this.updateString(key, expected, next, options.ttlMs))) return true;
    // absent, expired, another value or another kind: decided under the lock
    return this.atomic([key], async (q) => {
      const e = await this.entry(q, key);
      if (e && e.kind !== 'string') throw wrongType();
      const current = e?.value ? utf8(e.value) : null;
      if (current !== expected) return false;
      await this.writeString(q, key, next, options.ttlMs);
      return true;
    });
  }

  async take(key: string): Promise<string | null> {
    // one statement for a live string, as updateString; anything else is decided under the lock
    const [taken] = await this.read<{ value: Bytes }>(`DELETE FROM ${this.b.keys} WHERE key = decode($1, 'hex') AND kind = 'string' AND ${LIVE} RETURNING value`, [this.k(key)]);
    if (taken) return utf8(taken.value);
    return this.atomic([key], async (q) => {
      const e = await this.entry(q, key);
      if (!e) return null;
      if (e.kind !== 'string' || e.value === null) throw wrongType();
      await q.query(`DELETE FROM ${this.b.keys} WHERE key = decode($1, 'hex')`, [this.k(key)]);
      return utf8(e.value);
    });
  }

  async incr(key: string, options: { ttlMs?: number; by?: number } = {}): Promise<number> {
    const by = incrStep(options.by);
    return this.atomic([key], async (q) => {
      const e = await this.entry(q, key);
      if (!e) {
        await this.writeString(q, key, String(by), options.ttlMs);
        return by;
      }
      if (e.kind !== 'string' || e.value === null) throw wrongType();
      const text = utf8(e.value);
      if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text) + by)) throw new Error('ERR value is not an integer or out of range');
      const n = Number(text) + by;
      // the counter keeps the expiry it got when created
      await q.query(`UPDATE ${this.b.keys} SET value = decode($2, 'hex') WHERE key = decode($1, 'hex')`, [this.k(key), hex(String(n))]);
      return n;
    });
  }

  async ttl(key: string): Promise<number> {
    const [row] = await this.read<{ ms: number | null }>(
      `SELECT ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000)::float8 AS ms FROM ${this.b.keys} WHERE key = decode($1, 'hex') AND ${LIVE}`,
      [this.k(key)],
    );
    if (!row) return -2;
    return row.ms === null ? -1 : Math.max(1, row.ms);
  }

  async hset(key: string, fields: Record<string, string>): Promise<void> {
    const names = Object.keys(fields);
    await this.addTo(
      key,
      'hash',
      names,
      names.map((f) => fields[f] as string),
    );
  }

  async hget(key: string, field: string): Promise<string | null> {
    const [row] = await this.membersOf(key, 'hash', `AND m.member = decode($2, 'hex')`, [hex(field)]);
    return row?.value ? utf8(row.value) : null;
  }

  async hgetall(key: string): Promise<Record<string, string>> {
    const rows = await this.membersOf(key, 'hash');
    return Object.fromEntries(rows.map((r) => [utf8(r.member), r.value ? utf8(r.value) : '']));
  }

  hdel(key: string, ...fields: string[]): Promise<number> {
    return this.removeFrom(key, 'hash', fields);
  }

  sadd(key: string, ...members: string[]): Promise<number> {
    return this.addTo(key, 'set', members);
  }

  srem(key: string, ...members: string[]): Promise<number> {
    return this.removeFrom(key, 'set', members);
  }

  async smembers(key: string): Promise<string[]> {
    return (await this.membersOf(key, 'set')).map((r) => utf8(r.member));
  }

  async sismember(key: string, member: string): Promise<boolean> {
    return (await this.membersOf(key, 'set', `AND m.member = decode($2, 'hex')`, [hex(member)])).length > 0;
  }

  zadd(key: string, ...members: string[]): Promise<number> {
    return this.addTo(key, 'zset', members);
  }

  zrem(key: string, ...members: string[]): Promise<number> {
    return this.removeFrom(key, 'zset', members);
  }

  async zrangeByLex(key: string, range: LexRange = {}): Promise<string[]> {
    if (range.limit !== undefined && range.limit <= 0) return [];
    const conditions: string[] = [];
    const params: unknown[] = [];
    for (const [bound, below] of [
      [range.min, false],
      [range.max, true],
    ] as const) {
      if (!bound) continue;
      params.push(hex(bound.value));
      conditions.push(`AND m.member ${below ? '<' : '>'}${bound.inclusive ? '=' : ''} decode($${params.length + 1}, 'hex')`);
    }
    let tail = `ORDER BY m.member ${range.reverse ? 'DESC' : 'ASC'}`;
    if (range.limit !== undefined) {
      params.push(range.limit);
      tail += ` LIMIT $${params.length + 1}::int8`;
    }
    return (await this.membersOf(key, 'zset', conditions.join(' '), params, tail)).map((r) => utf8(r.member));
  }

  commitIf(guard: { key: string; expected: string | null }, writes: StoreWrite[]): Promise<boolean> {
    const keys = [guard.key, ...writes.map((w) => w.key)];
    return this.atomic(keys, async (q) => {
      // the kinds of every key involved, read once and kept current as the writes apply
      const found = await this.entries(q, keys);
      const kinds = new Map([...found].map(([key, e]) => [key, e.kind]));
      const g = found.get(guard.key);
      if (g && g.kind !== 'string') throw wrongType();
      if ((g?.value ? utf8(g.value) : null) !== guard.expected) return false;
      const zset = (key: string): boolean => {
        const kind = kinds.get(key);
        if (kind !== undefined && kind !== 'zset') throw wrongType();
        return kind !== undefined;
      };
      // checked before the first write, like the Redis script; a throw later still rolls everything back
      for (const w of writes) if (w.op === 'zadd' || w.op === 'zrem') zset(w.key);
      for (const w of writes) {
        if (w.op === 'set') {
          await this.writeString(q, w.key, w.value, w.ttlMs);
          kinds.set(w.key, 'string');
        } else if (w.op === 'del') {
          await q.query(`DELETE FROM ${this.b.keys} WHERE key = decode($1, 'hex')`, [this.k(w.key)]);
          kinds.delete(w.key);
        } else if (w.members.length === 0) {
        } else if (w.op === 'zadd') {
          await this.addMembers(q, w.key, 'zset', zset(w.key), w.members);
          kinds.set(w.key, 'zset');
        } else if (zset(w.key) && (await this.removeMembers(q, w.key, w.members)).emptied) {
          kinds.delete(w.key);
        }
      }
      return true;
    });
  }

  async keys(keyPrefix: string): Promise<string[]> {
    // a byte range instead of LIKE: nothing to escape, and the primary key index serves it
    const rows = await this.read<{ key: Bytes }>(`SELECT key FROM ${this.b.keys} WHERE key >= decode($1, 'hex') AND ($2::text IS NULL OR key < decode($2, 'hex')) AND ${LIVE}`, [
      this.k(keyPrefix),
      prefixEnd(this.prefix + keyPrefix),
    ]);
    return rows.map((r) => utf8(r.key).slice(this.prefix.length));
  }

  async ping(): Promise<void> {
    await this.read('SELECT 1', []);
  }

  transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.b.tx.getStore()) return fn();
    this.live();
    return this.b.db
      .transaction((tx) => this.b.tx.run(tx, fn))
      .catch((err: unknown) => {
        throw toStoreError(err);
      });
  }

  async close(): Promise<void> {
    if (!this.isRoot) return;
    this.b.closed = true;
    clearInterval(this.b.sweep);
  }
}

/**
 * A Store kept in PostgreSQL (or PGlite): the same semantics as the Redis store, durable. Expired keys
 * are invisible at once and deleted on their next write or by a periodic sweep. Connection failures
 * reject with StoreUnavailableError. close() stops the sweep and the store; the Db stays open.
 */
export function createPgStore(options: PgStoreOptions): RecordStore {
  const schema = identifier(options.schema);
  const backend: Backend = {
    db: options.db,
    keys: `${schema}.store_keys`,
    members: `${schema}.store_members`,
    schema,
    tx: new AsyncLocalStorage(),
    closed: false,
    sweep: undefined,
  };
  backend.sweep = setInterval(() => {
    options.db
      .query(`DELETE FROM ${backend.keys} WHERE key IN (SELECT key FROM ${backend.keys} WHERE expires_at <= clock_timestamp() LIMIT 1000)`)
      .catch((err: unknown) => options.onError?.(err as Error));
  }, options.sweepIntervalMs ?? 60_000);
  // the sweep alone must not keep a process alive
  backend.sweep.unref();
  return new PgStore(backend, options.prefix, true);
}
