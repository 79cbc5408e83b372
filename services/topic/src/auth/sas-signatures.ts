import { createHash } from 'node:crypto';
import { ApiError, type PacClient } from '@keyway/clients';
import { SasError, type VerifiedSas } from '@keyway/sas';
import { forgetOnFailure, setBounded } from '../bounded-cache.ts';

/** A genuine key's signed fields and id, and the generation of the tenant keys that verified it. */
export type SignatureVerdict = VerifiedSas & { generation: number };

/**
 * Whether a SAS key's signature is genuine: its signed fields, or undefined for a forgery, a
 * malformed key or an unknown tenant. Rejects when it cannot be told (PAC unreachable), which the
 * guard answers with 503, never "allow". The tenant keys stay at PAC (issue 9: a stolen topic
 * certificate read every tenant's namespace keys).
 */
export type SasSignatureSource = (sasKey: string) => Promise<SignatureVerdict | undefined>;

/** The production source: PAC's internal verify endpoint (mTLS with this service's certificate). */
export function pacSasSignatures(pac: Pick<PacClient, 'verifySasKey'>): SasSignatureSource {
  return async (sasKey) => {
    try {
      const verdict = await pac.verifySasKey(sasKey);
      if (!verdict.valid) return undefined;
      return { keyId: verdict.key_id, resource: verdict.resource, keyName: verdict.key_name, expiry: verdict.expiry, generation: verdict.generation };
    } catch (err) {
      // a key PAC could not read at all is a bad key, not an outage
      if (err instanceof ApiError && err.status === 400) return undefined;
      throw err;
    }
  };
}

/** Callers present keys of their choosing: bound the cache so made-up keys cannot grow it without end. */
const MAX_VERDICTS = 50_000;

/**
 * Verdicts per key for ttlMs; concurrent checks of one key share one PAC call; failed calls are not
 * cached. Verdicts are per key string (canonical, so one per key), forgeries included, so a client
 * retrying a bad key costs one call per period. A tenant's rotation shows as a newer generation in
 * any verdict: from then on its older verdicts are asked again, so keys signed with a replaced key
 * stop at once, as soon as the topic service meets one signed with the new keys, and within ttlMs
 * otherwise. Throws ERR_SAS_SIGNATURE for a key PAC does not vouch for.
 */
export function sasSignatureCache(source: SasSignatureSource, options: { ttlMs: number; now: () => number }) {
  const verdicts = new Map<string, { verdict: Promise<SignatureVerdict | undefined>; checkedAt: number }>();
  /** the newest generation of each tenant's keys seen in a verdict, by the tenant a key's resource names */
  const generations = new Map<string, number>();
  const tenantOf = (v: SignatureVerdict) => v.resource.toLowerCase().replace(/\/topics\/[^/]+$/, '');

  const fresh = async (entry: { verdict: Promise<SignatureVerdict | undefined>; checkedAt: number }) => {
    if (options.now() - entry.checkedAt >= options.ttlMs) return false;
    const verdict = await entry.verdict;
    return verdict === undefined || verdict.generation >= (generations.get(tenantOf(verdict)) ?? 0);
  };

  return async function verifySignature(sasKey: string): Promise<VerifiedSas> {
    const id = createHash('sha256').update(sasKey).digest('base64url');
    let entry = verdicts.get(id);
    if (!entry || !(await fresh(entry))) {
      entry = { verdict: source(sasKey), checkedAt: options.now() };
      setBounded(verdicts, id, entry, MAX_VERDICTS);
      forgetOnFailure(verdicts, id, entry, entry.verdict);
    }
    const verdict = await entry.verdict;
    if (!verdict) throw new SasError('ERR_SAS_SIGNATURE', 'the shared access signature is not valid');
    const tenant = tenantOf(verdict);
    if (verdict.generation > (generations.get(tenant) ?? 0)) setBounded(generations, tenant, verdict.generation, MAX_VERDICTS);
    const { generation: _generation, ...verified } = verdict;
    return verified;
  };
}
