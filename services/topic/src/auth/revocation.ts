import { setBounded } from '../bounded-cache.ts';

/** Whether PAC has revoked an issued SAS key; rejects when PAC cannot answer (callers answer 503). */
export type RevocationSource = (keyId: string) => Promise<boolean>;

const MAX_KEYS = 50_000;

/**
 * Revocation answers per key id. "Not revoked" is reused for ttlMs only, which bounds how long a
 * revoked key keeps working here (design.md: within seconds); "revoked" is final.
 */
export function revocationCache(source: RevocationSource, options: { ttlMs: number; now: () => number }) {
  const answers = new Map<string, { revoked: boolean; checkedAt: number }>();
  return async function isRevoked(keyId: string): Promise<boolean> {
    const known = answers.get(keyId);
    if (known && (known.revoked || options.now() - known.checkedAt < options.ttlMs)) return known.revoked;
    const revoked = await source(keyId);
    setBounded(answers, keyId, { revoked, checkedAt: options.now() }, MAX_KEYS);
    return revoked;
  };
}
