import { Redis, ReplyError } from 'ioredis';
import type { Result } from 'ioredis';
import { incrStep, StoreUnavailableError } from './store.ts';
import type { LexBound, LexRange, SetOptions, Store, StoreWrite } from './store.ts';

export interface RedisStoreOptions {
  url: string;
  prefix: string;
  /** receives connection errors, which are otherwise swallowed so an outage cannot crash the process */
  onError?: (err: Error) => void;
  /** upper bound for one command, so a hung (not refused) connection still fails; default 5000 */
  commandTimeoutMs?: number;
  /** upper bound for establishing the TCP connection; default 5000 */
  connectTimeoutMs?: number;
}

// The guarded scripts open with this check and end the script with 0 unless KEYS[1] holds what the
// caller expects: ARGV[1] '1' = expect it absent, else ARGV[2] = its expected value.
const GUARD = `
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then
  return 0
end`;

// SET with a PX expiry, or none when ttlMs is ''.
const SET_WITH_TTL = `
local function set_with_ttl(key, value, ttlMs)
  if ttlMs ~= '' then
    redis.call('SET', key, value, 'PX', ttlMs)
  else
    redis.call('SET', key, value)
  end
end`;

// Lua keeps the read-compare-write in one server-side step, so concurrent callers cannot interleave.
// ARGV: [expectAbsent '1'|'0', expected, next, ttlMs or '']
const COMPARE_AND_SET = `${SET_WITH_TTL}${GUARD}
set_with_ttl(KEYS[1], ARGV[3], ARGV[4])
return 1`;

// INCR + PEXPIRE in one step: a crash between them must not leave a counter that never expires.
const INCR_WITH_TTL = `
local by = tonumber(ARGV[2])
local n = redis.call('INCRBY', KEYS[1], by)
if n == by and ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

// Guard and every write in one script, so no other client ever sees half a commit. Writes arrive as a
// flat ARGV sequence (not JSON) so values pass byte for byte:
//   set <keyIndex> <value> <ttlMs or ''> | del <keyIndex> | zadd|zrem <keyIndex> <n> <member>*n
// KEYS[1] is the guard; ARGV[1] '1' = expect absent, ARGV[2] = expected value. Types are checked in a
// first pass because Redis does not roll back the writes a script made before an error.
const COMMIT_IF = `${SET_WITH_TTL}${GUARD}
local i = 3
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'set' then i = i + 4
  elseif op == 'del' then i = i + 2
  else
    local t = redis.call('TYPE', KEYS[tonumber(ARGV[i + 1])]).ok
    if t ~= 'none' and t ~= 'zset' then
      return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
    end
    i = i + 3 + tonumber(ARGV[i + 2])
  end
end
i = 3
while i <= #ARGV do
  local op, key = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  if op == 'set' then
    set_with_ttl(key, ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  elseif op == 'del' then
    redis.call('DEL', key)
    i = i + 2
  else
    local n = tonumber(ARGV[i + 2])
    for j = i + 3, i + 2 + n do
      if op == 'zadd' then redis.call('ZADD', key, 0, ARGV[j]) else redis.call('ZREM', key, ARGV[j]) end
    end
    i = i + 3 + n
  end
end
return 1`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    keywayCompareAndSet(key: string, expectAbsent: string, expected: string, next: string, ttlMs: string): Result<number, Context>;
    keywayIncr(key: string, ttlMs: string, by: string): Result<number, Context>;
    keywayCommitIf(numKeys: number, ...keysThenArgs: string[]): Result<number, Context>;
  }
}

// Reply errors that mean "the server cannot serve right now" rather than "this command is wrong".
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/;

/**
 * ioredis reports server answers as ReplyError; anything else it rejects with (closed connection,
 * offline queue disabled, MaxRetriesPerRequestError, ECONNREFUSED, command timeout) is a transport
 * problem, which callers must see as StoreUnavailableError.
 */
function toStoreError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  if (err instanceof ReplyError && !UNAVAILABLE_REPLY.test((err as Error).message)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StoreUnavailableError(`redis unavailable: ${message}`, { cause: err });
}

async function guard<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw toStoreError(err);
  }
}

// SCAN MATCH and ACL key patterns treat these as glob syntax; a key prefix must match literally.
export function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

// ZRANGEBYLEX bounds: '[' inclusive, '(' exclusive, '-' / '+' unbounded.
const lexBound = (bound: LexBound | undefined, unbounded: '-' | '+'): string => (bound === undefined ? unbounded : `${bound.inclusive ? '[' : '('}${bound.value}`);

const ttlArg = (ttlMs: number | undefined): string => (ttlMs === undefined ? '' : String(Math.max(1, Math.ceil(ttlMs))));

class RedisStore implements Store {
  constructor(
    private readonly redis: Redis,
    readonly prefix: string,
    /** only the root view owns the connection; scoped views share it and do not close it */
    private readonly isRoot: boolean,
  ) {}

  private k(key: string): string {
    return this.prefix + key;
  }

  scoped(sub: string): Store {
    return new RedisStore(this.redis, `${this.prefix}${sub}:`, false);
  }

  get(key: string): Promise<string | null> {
    return guard(() => this.redis.get(this.k(key)));
  }

  set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    return guard(async () => {
      const args: (string | number)[] = [];
      if (options.ttlMs !== undefined) args.push('PX', ttlArg(options.ttlMs));
      if (options.ifAbsent) args.push('NX');
      const reply = await this.redis.call('SET', this.k(key), value, ...args);
      return reply === 'OK';
    });
  }

  del(...keys: string[]): Promise<number> {
    if (keys.length === 0) return Promise.resolve(0);
    return guard(() => this.redis.del(...keys.map((key) => this.k(key))));
  }

  compareAndSet(key: string, expected: string | null, next: string, options: { ttlMs?: number } = {}): Promise<boolean> {
    return guard(async () => {
      const n = await this.redis.keywayCompareAndSet(this.k(key), expected === null ? '1' : '0', expected ?? '', next, ttlArg(options.ttlMs));
      return n === 1;
    });
  }

  take(key: string): Promise<string | null> {
    return guard(() => this.redis.getdel(this.k(key)));
  }

  async incr(key: string, options: { ttlMs?: number; by?: number } = {}): Promise<number> {
    const by = incrStep(options.by);
    return guard(() => this.redis.keywayIncr(this.k(key), ttlArg(options.ttlMs), String(by)));
  }

  ttl(key: string): Promise<number> {
    return guard(() => this.redis.pttl(this.k(key)));
  }

  hset(key: string, fields: Record<string, string>): Promise<void> {
    // HSET with no field/value pairs is a syntax error in Redis; an empty update is a no-op.
    if (Object.keys(fields).length === 0) return Promise.resolve();
    return guard(async () => {
      await this.redis.hset(this.k(key), fields);
    });
  }

  hget(key: string, field: string): Promise<string | null> {
    return guard(() => this.redis.hget(this.k(key), field));
  }

  hgetall(key: string): Promise<Record<string, string>> {
    return guard(() => this.redis.hgetall(this.k(key)));
  }

  hdel(key: string, ...fields: string[]): Promise<number> {
    if (fields.length === 0) return Promise.resolve(0);
    return guard(() => this.redis.hdel(this.k(key), ...fields));
  }

  sadd(key: string, ...members: string[]): Promise<number> {
    if (members.length === 0) return Promise.resolve(0);
    return guard(() => this.redis.sadd(this.k(key), ...members));
  }

  srem(key: string, ...members: string[]): Promise<number> {
    if (members.length === 0) return Promise.resolve(0);
    return guard(() => this.redis.srem(this.k(key), ...members));
  }

  smembers(key: string): Promise<string[]> {
    return guard(() => this.redis.smembers(this.k(key)));
  }

  sismember(key: string, member: string): Promise<boolean> {
    return guard(async () => (await this.redis.sismember(this.k(key), member)) === 1);
  }

  zadd(key: string, ...members: string[]): Promise<number> {
    if (members.length === 0) return Promise.resolve(0);
    return guard(() => this.redis.zadd(this.k(key), ...members.flatMap((m) => ['0', m])));
  }

  zrem(key: string, ...members: string[]): Promise<number> {
    if (members.length === 0) return Promise.resolve(0);
    return guard(() => this.redis.zrem(this.k(key), ...members));
  }

  zrangeByLex(key: string, range: LexRange = {}): Promise<string[]> {
    if (range.limit !== undefined && range.limit <= 0) return Promise.resolve([]);
    const min = lexBound(range.min, '-');
    const max = lexBound(range.max, '+');
    const [from, to] = range.reverse ? [max, min] : [min, max];
    const k = this.k(key);
    return guard(() => {
      if (range.limit === undefined) return range.reverse ? this.redis.zrevrangebylex(k, from, to) : this.redis.zrangebylex(k, from, to);
      return range.reverse ? this.redis.zrevrangebylex(k, from, to, 'LIMIT', 0, range.limit) : this.redis.zrangebylex(k, from, to, 'LIMIT', 0, range.limit);
    });
  }

  commitIf(condition: { key: string; expected: string | null }, writes: StoreWrite[]): Promise<boolean> {
    // KEYS lists every key the script touches (each once); writes refer to them by 1-based index.
    const keyIndex = new Map<string, string>([[this.k(condition.key), '1']]);
    const index = (key: string): string => {
      const full = this.k(key);
      let at = keyIndex.get(full);
      if (at === undefined) {
        at = String(keyIndex.size + 1);
        keyIndex.set(full, at);
      }
      return at;
    };
    const args: string[] = [condition.expected === null ? '1' : '0', condition.expected ?? ''];
    for (const w of writes) {
      if (w.op === 'set') args.push('set', index(w.key), w.value, ttlArg(w.ttlMs));
      else if (w.op === 'del') args.push('del', index(w.key));
      else args.push(w.op, index(w.key), String(w.members.length), ...w.members);
    }
    const keys = [...keyIndex.keys()];
    return guard(async () => (await this.redis.keywayCommitIf(keys.length, ...keys, ...args)) === 1);
  }

  keys(keyPrefix: string): Promise<string[]> {
    return guard(async () => {
      const pattern = `${escapeGlob(this.k(keyPrefix))}*`;
      // SCAN may return a key more than once while the keyspace is rehashing.
      const found = new Set<string>();
      let cursor = '0';
      do {
        const [nextCursor, batch] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        for (const key of batch) found.add(key.slice(this.prefix.length));
        cursor = nextCursor;
      } while (cursor !== '0');
      return [...found];
    });
  }

  ping(): Promise<void> {
    return guard(async () => {
      await this.redis.ping();
    });
  }

  async close(): Promise<void> {
    if (!this.isRoot || this.redis.status === 'end') return;
    try {
      await this.redis.quit();
    } catch {
      // QUIT cannot be sent while disconnected; disconnect() still stops the reconnect loop.
      this.redis.disconnect();
    }
  }
}

/**
 * Connects before resolving (rejects with StoreUnavailableError when Redis cannot be reached, with
 * the server's reply error when it refuses the credentials).
 * Afterwards a Redis outage makes every call fail fast with StoreUnavailableError (no offline queue)
 * while ioredis keeps reconnecting in the background, so the store recovers by itself.
 * `close()` on the root store closes the connection; on a scoped view it is a no-op.
 */
export async function createRedisStore(options: RedisStoreOptions): Promise<Store> {
  const redis = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 5000,
    connectTimeout: options.connectTimeoutMs ?? 5000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    // The ready check sends INFO, which a service's ACL user may not run (acl.ts); a server still
    // loading answers LOADING instead, which callers see as StoreUnavailableError.
    enableReadyCheck: false,
  });
  // Without a listener an 'error' event would be thrown and crash the process during an outage.
  redis.on('error', (err: Error) => options.onError?.(err));
  redis.defineCommand('keywayCompareAndSet', { numberOfKeys: 1, lua: COMPARE_AND_SET });
  redis.defineCommand('keywayIncr', { numberOfKeys: 1, lua: INCR_WITH_TTL });
  // no fixed numberOfKeys: the caller passes the key count first, as with EVALSHA
  redis.defineCommand('keywayCommitIf', { lua: COMMIT_IF });
  try {
    await redis.connect();
    // A refused AUTH (wrong password, disabled user) answers the first command, not connect(): fail
    // the start here rather than every call later.
    await redis.ping();
  } catch (err) {
    // connect() rejects on the first failure but the retry strategy would keep trying forever.
    redis.disconnect();
    throw toStoreError(err);
  }
  return new RedisStore(redis, options.prefix, true);
}
