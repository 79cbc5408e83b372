import type { Store } from '@keyway/store';

export interface IssuedSasKey {
  keyId: string;
  tenant: string;
  topic: string;
  rights: string;
  sub: string;
  fid: string;
  expiresAt: number;
}

/** Issued key ids under tenant/topic/family, so a removal can revoke them by prefix. */
export function issuedRegistry(store: Store) {
  return {
    async record(key: IssuedSasKey): Promise<void> {
      const ttlMs = Math.max(1, key.expiresAt * 1000 - Date.now());
      await store.set(`issued:${key.tenant}:${key.topic}:${key.fid}:${key.keyId}`, JSON.stringify(key), { ttlMs });
    },
  };
}
export type IssuedRegistry = ReturnType<typeof issuedRegistry>;
