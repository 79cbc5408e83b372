import { createMemoryStore } from './memory.ts';
import { createRedisStore } from './redis.ts';
import type { Store } from './store.ts';

export * from './store.ts';
export { createMemoryStore } from './memory.ts';
export { createRedisStore } from './redis.ts';
export { createPgStore, type RecordStore } from './postgres.ts';

export interface CreateStoreOptions {
  /** when set, the store is Redis; otherwise the embedded in-memory store */
  redisUrl?: string | undefined;
  prefix: string;
  onError?: (err: Error) => void;
}

export function createStore(options: CreateStoreOptions): Promise<Store> {
  if (options.redisUrl) {
    return createRedisStore({ url: options.redisUrl, prefix: options.prefix, onError: options.onError });
  }
  return Promise.resolve(createMemoryStore({ prefix: options.prefix }));
}
export { storeAclRules } from './acl.ts';
