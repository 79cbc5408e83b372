import { z } from 'zod';
import type { Store } from '@keyway/store';

/** jkt: the DPoP key (RFC 9449 `cnf.jkt`) the family is bound to from its login on; absent for a bearer family. */
const FamilyInfo = z.object({ fid: z.string(), sub: z.string(), tid: z.string(), scope: z.string(), jkt: z.string().optional() });
export type FamilyInfo = z.infer<typeof FamilyInfo>;

/**
 * A refresh family: every refresh token descended from one login. The family records the one jti
 * that may be used next; rotation swaps it atomically so exactly one concurrent refresh wins.
 * Families are indexed by subject and tenant so an entitlement change can revoke them in one call,
 * and by DPoP key so revoking an agent's key pair does.
 */
/**
 * Told of every revocation of a live family before it is made, so the SAS keys minted from it can be
 * revoked with it (PAS's outbox → PAC); a rejection fails the revocation, which the caller retries.
 */
export type FamilyRevocationHook = (family: FamilyInfo, reason: string) => Promise<void>;

export function refreshFamilies(store: Store, onRevoke: FamilyRevocationHook = async () => undefined) {
  const currentKey = (fid: string) => `family:${fid}`;
  const infoKey = (fid: string) => `family-info:${fid}`;
  const bySubjectKey = (sub: string) => `subject-families:${sub}`;
  const byTenantKey = (tid: string) => `tenant-families:${tid}`;
  const byDpopKey = (jkt: string) => `dpop-key-families:${jkt}`;
  const spentKey = (fid: string, jti: string) => `spent:${fid}:${jti}`;

  /** Live families in an index; entries of expired or revoked families are pruned on the way. */
  const live = async (indexKey: string): Promise<FamilyInfo[]> => {
    const fids = await store.smembers(indexKey);
    const infos = await Promise.all(fids.map(async (fid) => ({ fid, raw: await store.get(infoKey(fid)) })));
    const gone = infos.filter((i) => i.raw === null).map((i) => i.fid);
    if (gone.length > 0) await store.srem(indexKey, ...gone);
    return infos.flatMap((i) => (i.raw === null ? [] : [FamilyInfo.parse(JSON.parse(i.raw))]));
  };

  return {
    async start(info: FamilyInfo, jti: string, ttlMs: number): Promise<void> {
      await store.set(infoKey(info.fid), JSON.stringify(info), { ttlMs });
      await store.set(currentKey(info.fid), jti, { ttlMs });
      await store.sadd(bySubjectKey(info.sub), info.fid);
      await store.sadd(byTenantKey(info.tid), info.fid);
      if (info.jkt !== undefined) await store.sadd(byDpopKey(info.jkt), info.fid);
    },
    current: (fid: string) => store.get(currentKey(fid)),
    async info(fid: string): Promise<FamilyInfo | undefined> {
      const raw = await store.get(infoKey(fid));
      return raw ? FamilyInfo.parse(JSON.parse(raw)) : undefined;
    },
    /**
     * Swap spent → next; false when another refresh of the same token won, or the family is gone.
     * The spent jti is remembered for `reuseLeewayMs` so a duplicate of the same refresh can be told
     * apart from a replay.
     */
    async rotate(fid: string, spentJti: string, nextJti: string, ttlMs: number, reuseLeewayMs: number, jkt?: string): Promise<boolean> {
      const raw = await store.get(infoKey(fid));
      // A bearer family refreshed with a DPoP proof is bound from now on (RFC 9449 §5); a bound one keeps its key.
      const info = raw === null ? null : FamilyInfo.parse(JSON.parse(raw));
      const binds = info !== null && info.jkt === undefined && jkt !== undefined;
      // One atomic write: a concurrent request that sees the swap also sees the mark, and the family
      // lives on for ttlMs.
      const rotated = await store.commitIf({ key: currentKey(fid), expected: spentJti }, [
        ...(reuseLeewayMs > 0 ? [{ op: 'set' as const, key: spentKey(fid, spentJti), value: '1', ttlMs: reuseLeewayMs }] : []),
        { op: 'set', key: currentKey(fid), value: nextJti, ttlMs },
        ...(info === null ? [] : [{ op: 'set' as const, key: infoKey(fid), value: JSON.stringify(binds ? { ...info, jkt } : info), ttlMs }]),
      ]);
      if (rotated && binds && jkt !== undefined) await store.sadd(byDpopKey(jkt), fid);
      return rotated;
    },
    /** true when the token was spent within the reuse leeway (a duplicate, not a replay) */
    spentRecently: async (fid: string, jti: string) => (await store.get(spentKey(fid, jti))) !== null,
    /**
     * true when the family was live. Every revocation (RFC 7009, reuse detection, an entitlement
     * change, a denied refresh) comes through here, so each one reaches PAC: the announcement is
     * stored (outbox) before the family is deleted, so a crash in between leaves the family live and
     * the caller's retry announces it again, never a revoked family whose keys still work.
     * `announce: false` only where PAC acts on the same cause itself (an entitlement change event,
     * which PAC follows with its own scope: a removed feed leaves the keys for the other feeds).
     */
    async revoke(fid: string, reason = 'family_revoked', { announce = true } = {}): Promise<boolean> {
      const raw = await store.get(infoKey(fid));
      if (raw === null) return false;
      if (announce) await onRevoke(FamilyInfo.parse(JSON.parse(raw)), reason);
      return (await store.del(currentKey(fid), infoKey(fid))) > 0;
    },
    ofSubject: (sub: string) => live(bySubjectKey(sub)),
    ofTenant: (tid: string) => live(byTenantKey(tid)),
    ofDpopKey: (jkt: string) => live(byDpopKey(jkt)),
  };
}
export type RefreshFamilies = ReturnType<typeof refreshFamilies>;
