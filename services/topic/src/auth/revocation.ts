import { setBounded } from '../bounded-cache.ts';

/**
 * PAC's word on an issued SAS key: revoked or not, and the DPoP key it is bound to (RFC 9449 cnf.jkt;
 * every use then needs a proof signed with it); rejects when PAC cannot answer (callers answer 503).
 */
export interface KeyStatus {
  revoked: boolean;
  jkt?: string | undefined;
}
export type KeyStatusSource = (keyId: string) => Promise<KeyStatus>;

const MAX_KEYS = 50_000;

/**
 * Key status answers per key id (a key's binding never changes). "Not revoked" is reused for ttlMs only, which bounds how long a
 * revoked key keeps working here (design.md: within seconds); "revoked" is final. Concurrent checks
 * of one key share one PAC call: thousands of long polls on one key must not ask PAC each time the
 * answer expires (seen: 503s while 10,000 polls were opened).
 */
export function keyStatusCache(source: KeyStatusSource, options: { ttlMs: number; now: () => number }) {
  const answers = new Map<string, { status: KeyStatus; checkedAt: number }>();
  const asking = new Map<string, Promise<KeyStatus>>();
  return function keyStatus(keyId: string): Promise<KeyStatus> {
    const known = answers.get(keyId);
    if (known && (known.status.revoked || options.now() - known.checkedAt < options.ttlMs)) return Promise.resolve(known.status);
    let lookup = asking.get(keyId);
    if (!lookup) {
      lookup = source(keyId)
        .then((status) => {
          setBounded(answers, keyId, { status, checkedAt: options.now() }, MAX_KEYS);
          return status;
        })
        .finally(() => asking.delete(keyId));
      asking.set(keyId, lookup);
    }
    return lookup;
  };
}
