import type { Store } from '@keyway/store';

/**
 * A refresh family: every refresh token descended from one login. The family records the one jti
 * that may be used next; rotation swaps it atomically so exactly one concurrent refresh wins.
 */
export function refreshFamilies(store: Store) {
  const key = (fid: string) => `family:${fid}`;
  return {
    start: (fid: string, jti: string, ttlMs: number) => store.set(key(fid), jti, { ttlMs }),
    current: (fid: string) => store.get(key(fid)),
    rotate: (fid: string, spentJti: string, nextJti: string, ttlMs: number) => store.compareAndSet(key(fid), spentJti, nextJti, { ttlMs }),
    revoke: (fid: string) => store.del(key(fid)),
  };
}
export type RefreshFamilies = ReturnType<typeof refreshFamilies>;
