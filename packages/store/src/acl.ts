import { escapeGlob } from './redis.ts';

/**
 * Every command the Redis store sends, directly or from its Lua scripts (Redis checks a script's
 * calls against the caller's ACL user too). EVAL is the fallback ioredis sends when the server
 * answers NOSCRIPT to EVALSHA, as it does after a restart. Nothing else: no @dangerous or @admin
 * command, no pub/sub, no SCAN (see listKeys).
 */
const STORE_COMMANDS = [
  'ping',
  'get',
  'set',
  'del',
  'getdel',
  'pttl',
  'hset',
  'hget',
  'hgetall',
  'hdel',
  'sadd',
  'srem',
  'smembers',
  'sismember',
  'zadd',
  'zrem',
  'zrangebylex',
  'zrevrangebylex',
  'evalsha',
  'eval',
  // only inside the scripts
  'incr',
  'incrby',
  'pexpire',
  'type',
];

interface StoreAclOptions {
  /** the store's prefix (`${STORE_PREFIX}:<service>:`): the user reaches these keys and no others */
  keyPrefix: string;
  /**
   * Store.keys (SCAN) is used. SCAN is not bounded by key patterns: it lists every key name in the
   * database (not values), so only a user whose code calls Store.keys gets it.
   */
  listKeys?: boolean;
}

/** ACL rules (for `ACL SETUSER` or a users.acl line, after the name and password) for a user that can run a Redis store under one prefix. */
export function storeAclRules(options: StoreAclOptions): string[] {
  const commands = options.listKeys ? [...STORE_COMMANDS, 'scan'] : STORE_COMMANDS;
  return ['resetkeys', `~${escapeGlob(options.keyPrefix)}*`, 'resetchannels', '-@all', ...commands.map((c) => `+${c}`)];
}
