import type { Store } from '@keyway/store';

/**
 * DPoP key pairs an operator revoked (RFC 9449 `cnf.jkt`), in PAS's system of record (the records
 * store, PostgreSQL, where the signing key ring lives): a revoked key stays refused when Redis is lost
 * (design.md's state rule), which Redis alone would not promise. A thumbprint of a public key is no
 * secret. Kept without expiry: an agent whose key was revoked makes a new one.
 */
export function revokedDpopKeys(records: Store) {
  const key = (jkt: string) => `dpop-key-revoked:${jkt}`;
  return {
    has: async (jkt: string): Promise<boolean> => (await records.get(key(jkt))) !== null,
    /** false when it was revoked before (the first revocation's time and reason are kept) */
    add: (jkt: string, reason: string): Promise<boolean> => records.set(key(jkt), JSON.stringify({ at: new Date().toISOString(), reason }), { ifAbsent: true }),
  };
}
export type RevokedDpopKeys = ReturnType<typeof revokedDpopKeys>;
