import type { Store } from '@keyway/store';

export interface IssuedSasKey {
  keyId: string;
  tenant: string;
  topic: string;
  rights: string;
  sub: string;
  fid: string;
  /** unix seconds */
  expiresAt: number;
}

export type RevocationScope = { tenant: string; sub?: string; topic?: string; fid?: string };

/**
 * Issued key ids under tenant/topic/family, so a removal can revoke them by prefix (design.md);
 * a revoked key id is remembered until the key would have expired anyway.
 */
export function issuedRegistry(store: Store, now: () => number = Date.now) {
  const issuedKey = (k: IssuedSasKey) => `issued:${k.tenant}:${k.topic}:${k.fid}:${k.keyId}`;
  const revokedKey = (keyId: string) => `revoked:${keyId}`;
  const ttlMs = (expiresAt: number) => Math.max(1, expiresAt * 1000 - now());

  return {
    async record(key: IssuedSasKey): Promise<void> {
      await store.set(issuedKey(key), JSON.stringify(key), { ttlMs: ttlMs(key.expiresAt) });
    },
    /** Revokes every live key in scope; returns the keys this call revoked (not those revoked before). */
    async revoke(scope: RevocationScope): Promise<IssuedSasKey[]> {
      const prefix = ['issued', scope.tenant, scope.topic, scope.topic ? scope.fid : undefined].filter((p) => p !== undefined).join(':') + ':';
      const names = await store.keys(prefix);
      const records = (await Promise.all(names.map((name) => store.get(name))))
        .filter((raw): raw is string => raw !== null)
        .map((raw) => JSON.parse(raw) as IssuedSasKey)
        .filter((k) => (!scope.sub || k.sub === scope.sub) && (!scope.fid || k.fid === scope.fid));
      const fresh = await Promise.all(records.map((k) => store.set(revokedKey(k.keyId), '1', { ttlMs: ttlMs(k.expiresAt), ifAbsent: true })));
      return records.filter((_, i) => fresh[i]);
    },
    isRevoked: async (keyId: string) => (await store.get(revokedKey(keyId))) !== null,
  };
}
export type IssuedRegistry = ReturnType<typeof issuedRegistry>;
