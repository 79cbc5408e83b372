import type { Rights } from '@keyway/contracts';
import type { Store, StoreWrite } from '@keyway/store';

export interface IssuedSasKey {
  keyId: string;
  tenant: string;
  topic: string;
  rights: Rights;
  sub: string;
  fid: string;
  /** unix seconds */
  expiresAt: number;
  /** RFC 9449: the thumbprint of the DPoP key the key is bound to (its holder proved that key at the mint); the topic service then requires its proofs */
  jkt?: string;
}

export type RevocationScope = { tenant: string; sub?: string; topic?: string; fid?: string };

/**
 * Issued key ids under tenant/topic/family, so a removal can revoke them by prefix (design.md);
 * a revoked key id is remembered until the key would have expired anyway.
 *
 * A revoked family is remembered too, for `maxKeyLifetimeMs` (the longest a key minted before the
 * revocation can live): a key minted from it after the revocation (its refresh token introspected
 * just before PAS revoked the family) is revoked as it is recorded.
 *
 * Each key is also found by its id (`key:<keyId>`), so a key check can ask the system of record about
 * its holder (issue 11).
 *
 * A key bound to a DPoP key is also recorded under tenant/jkt (`bound:`), so revoking an agent's key
 * pair revokes its SAS keys whatever family minted them; a revoked jkt is remembered like a family.
 */
export function issuedRegistry(store: Store, now: () => number = Date.now, maxKeyLifetimeMs = 86_400_000) {
  const issuedKey = (k: IssuedSasKey) => `issued:${k.tenant}:${k.topic}:${k.fid}:${k.keyId}`;
  const byId = (keyId: string) => `key:${keyId}`;
  const revokedKey = (keyId: string) => `revoked:${keyId}`;
  const revokedFamilyKey = (fid: string) => `revoked-family:${fid}`;
  const boundKey = (tenant: string, jkt: string, keyId?: string) => `bound:${tenant}:${jkt}:${keyId ?? ''}`;
  const revokedJktKey = (tenant: string, jkt: string) => `revoked-jkt:${tenant}:${jkt}`;
  const ttlMs = (expiresAt: number) => Math.max(1, expiresAt * 1000 - now());
  const isFamilyRevoked = async (fid: string) => (await store.get(revokedFamilyKey(fid))) !== null;
  const isJktRevoked = async (key: IssuedSasKey) => key.jkt !== undefined && (await store.get(revokedJktKey(key.tenant, key.jkt))) !== null;

  /** where a key is recorded: by id, and under tenant/topic/family for revocation by prefix */
  const recordsOf = (key: IssuedSasKey) => [byId(key.keyId), issuedKey(key), ...(key.jkt === undefined ? [] : [boundKey(key.tenant, key.jkt, key.keyId)])];
  const writes = (key: IssuedSasKey): StoreWrite[] => recordsOf(key).map((name) => ({ op: 'set', key: name, value: JSON.stringify(key), ttlMs: ttlMs(key.expiresAt) }));
  /**
   * Read after the key's records are committed, never in the same transaction: record() writes the
   * key then reads the mark, revoke() writes the mark then scans the keys, so whichever runs second
   * sees the other. true: the family was revoked meanwhile, and the key is revoked now.
   */
  const revokedWithFamily = async (key: IssuedSasKey): Promise<boolean> => {
    const [family, jkt] = await Promise.all([isFamilyRevoked(key.fid), isJktRevoked(key)]);
    if (!family && !jkt) return false;
    await store.set(revokedKey(key.keyId), '1', { ttlMs: ttlMs(key.expiresAt) });
    return true;
  };
  /** false when the key's family was revoked meanwhile: the key is then revoked already and must not be handed out */
  /** Revokes the live keys recorded under `prefix` that `keep` selects; returns those this call revoked (not those revoked before). */
  const revokeListed = async (prefix: string, keep: (key: IssuedSasKey) => boolean = () => true): Promise<IssuedSasKey[]> => {
    const names = await store.keys(prefix);
    const records = (await Promise.all(names.map((name) => store.get(name))))
      .filter((raw): raw is string => raw !== null)
      .map((raw) => JSON.parse(raw) as IssuedSasKey)
      .filter(keep);
    const fresh = await Promise.all(records.map((k) => store.set(revokedKey(k.keyId), '1', { ttlMs: ttlMs(k.expiresAt), ifAbsent: true })));
    return records.filter((_, i) => fresh[i]);
  };
  const record = async (key: IssuedSasKey): Promise<boolean> => {
    await Promise.all(recordsOf(key).map((name) => store.set(name, JSON.stringify(key), { ttlMs: ttlMs(key.expiresAt) })));
    return !(await revokedWithFamily(key));
  };

  return {
    /**
     * Records a freshly minted key for its holder: "taken" when another holder has it. A SAS key is
     * the HMAC of its resource and expiry under the tenant's key, so two mints for one feed and right
     * in the same second make the same key: shared by two holders, removing one would revoke the
     * other's key, and a key check would ask about the wrong holder; so mint another (an earlier
     * expiry). One holder may get the same key twice (it is theirs either way). "revoked": the
     * family was revoked meanwhile (see record). A new key's id is claimed and its records written in
     * one commit.
     */
    async issue(key: IssuedSasKey): Promise<'issued' | 'taken' | 'revoked'> {
      // Read first: a holder minting again within the second finds their key without queueing for its lock.
      let raw = await store.get(byId(key.keyId));
      if (raw === null) {
        if (await store.commitIf({ key: byId(key.keyId), expected: null }, writes(key))) return (await revokedWithFamily(key)) ? 'revoked' : 'issued';
        raw = await store.get(byId(key.keyId));
      }
      const holder = raw === null ? undefined : (JSON.parse(raw) as IssuedSasKey);
      // A key bound to another DPoP key (or to none) is not this holder's: sharing it would let the
      // proof of one key pair stand for the other, or an unbound holder drop the binding.
      if (holder?.tenant !== key.tenant || holder.sub !== key.sub || holder.jkt !== key.jkt) return 'taken';
      // The holder's already (same feed, rights and expiry): the id keeps naming its holder as first
      // recorded; this family's index gets it too, so revoking either family revokes the key.
      if (holder.fid !== key.fid) await store.set(issuedKey(key), JSON.stringify(key), { ttlMs: ttlMs(key.expiresAt) });
      return (await revokedWithFamily(key)) ? 'revoked' : 'issued';
    },
    record,
    isFamilyRevoked,
    /** Revokes every live key in scope; returns the keys this call revoked (not those revoked before). */
    async revoke(scope: RevocationScope): Promise<IssuedSasKey[]> {
      if (scope.fid) await store.set(revokedFamilyKey(scope.fid), '1', { ttlMs: maxKeyLifetimeMs });
      const prefix = `${['issued', scope.tenant, scope.topic, scope.topic ? scope.fid : undefined].filter((p) => p !== undefined).join(':')}:`;
      return revokeListed(prefix, (k) => (!scope.sub || k.sub === scope.sub) && (!scope.fid || k.fid === scope.fid));
    },
    /** Revokes every live key bound to the DPoP key `jkt` in the tenant (its key pair was revoked); returns the keys this call revoked. */
    async revokeBound(tenant: string, jkt: string): Promise<IssuedSasKey[]> {
      await store.set(revokedJktKey(tenant, jkt), '1', { ttlMs: maxKeyLifetimeMs });
      return revokeListed(boundKey(tenant, jkt));
    },
    isRevoked: async (keyId: string) => (await store.get(revokedKey(keyId))) !== null,
    /** the issued key with this id, or undefined (expired, or not minted by PAC: an operator's, from the policy keys) */
    async find(keyId: string): Promise<IssuedSasKey | undefined> {
      const raw = await store.get(byId(keyId));
      return raw === null ? undefined : (JSON.parse(raw) as IssuedSasKey);
    },
    /** Revokes one key; true when this call revoked it. */
    revokeKey: (key: IssuedSasKey) => store.set(revokedKey(key.keyId), '1', { ttlMs: ttlMs(key.expiresAt), ifAbsent: true }),
  };
}
export type IssuedRegistry = ReturnType<typeof issuedRegistry>;
