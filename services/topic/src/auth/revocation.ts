import { setBounded } from '../bounded-cache.ts';

/** Whether PAC has revoked an issued SAS key; rejects when PAC cannot answer (callers answer 503). */
export type RevocationSource = (keyId: string) => Promise<boolean>;

const MAX_KEYS = 50_000;

/**
 * Revocation answers per key id. "Not revoked" is reused for ttlMs only, which bounds how long a
 * revoked key keeps working here (design.md: within seconds); "revoked" is final. Concurrent checks
 * of one key share one PAC call: thousands of long polls on one key must not ask PAC each time the
 * answer expires (seen: 503s while 10,000 polls were opened).
 */
export function revocationCache(source: RevocationSource, options: { ttlMs: number; now: () => number }) {
  const answers = new Map<string, { revoked: boolean; checkedAt: number }>();
  const asking = new Map<string, Promise<boolean>>();
  return function isRevoked(keyId: string): Promise<boolean> {
    const known = answers.get(keyId);
    if (known && (known.revoked || options.now() - known.checkedAt < options.ttlMs)) return Promise.resolve(known.revoked);
    let lookup = asking.get(keyId);
    if (!lookup) {
      lookup = source(keyId)
        .then((revoked) => {
          setBounded(answers, keyId, { revoked, checkedAt: options.now() }, MAX_KEYS);
          return revoked;
        })
        .finally(() => asking.delete(keyId));
      asking.set(keyId, lookup);
    }
    return lookup;
  };
}
