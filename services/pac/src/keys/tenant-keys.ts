import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { TenantKeyName } from '@keyway/contracts';
import { Conflict } from '@keyway/kit';
import { policyKey, type KeyName } from '@keyway/sas';
import { isSealed, seal, unseal, type Keyring } from '@keyway/seal';
import type { Store } from '@keyway/store';

/**
 * signWith: which key new SAS keys are signed with; keys stored before rotation existed sign with the primary.
 * generation: counts rotations, so a verifier caching verdicts can tell they predate one (not secret).
 */
const Keys = z.object({ primary: z.string(), secondary: z.string(), signWith: TenantKeyName.default('primary'), generation: z.number().int().min(0).default(0) });
export type TenantKeys = z.infer<typeof Keys>;

/** Concurrent rotations of one tenant retry their compare-and-set this many times before giving up. */
const MAX_ROTATE_ATTEMPTS = 5;

const newKey = () => randomBytes(32).toString('base64');

/** AAD of a sealed root key: it opens only as that key of that tenant. */
const sealContext = (tenant: string, which: TenantKeyName) => `pac/sas-root/${tenant}/${which}`;

/**
 * Each tenant has a primary and a secondary namespace key: new SAS keys are signed with one of them
 * (`signWith`), verifiers accept both, so either can be regenerated without breaking holders of the
 * other (design.md, "Tokens and keys").
 */
export function tenantKeys(store: Store, kek: Keyring) {
  const key = (tenant: string) => `tenant-keys:${tenant}`;
  /** As stored: both namespace keys sealed under the current KEK, signWith and generation in the clear. */
  const sealed = async (tenant: string, keys: TenantKeys): Promise<string> =>
    JSON.stringify({ ...keys, primary: await seal(kek, keys.primary, sealContext(tenant, 'primary')), secondary: await seal(kek, keys.secondary, sealContext(tenant, 'secondary')) });
  /**
   * The tenant's keys and the stored text they were read from (for compare-and-set). Keys stored in
   * plaintext before sealing are read and stored again sealed on this first read; losing that
   * compare-and-set means another writer (a rotation) stored them sealed meanwhile.
   */
  const read = async (tenant: string): Promise<{ raw: string; keys: TenantKeys } | undefined> => {
    const raw = await store.get(key(tenant));
    if (raw === null) return undefined;
    const stored = Keys.parse(JSON.parse(raw));
    const open = async (which: TenantKeyName) => (isSealed(stored[which]) ? (await unseal(kek, stored[which], sealContext(tenant, which))).toString('utf8') : stored[which]);
    const keys: TenantKeys = { ...stored, primary: await open('primary'), secondary: await open('secondary') };
    if (isSealed(stored.primary) && isSealed(stored.secondary)) return { raw, keys };
    const resealed = await sealed(tenant, keys);
    return { raw: (await store.compareAndSet(key(tenant), raw, resealed)) ? resealed : raw, keys };
  };
  const find = async (tenant: string): Promise<TenantKeys | undefined> => (await read(tenant))?.keys;
  /** the tenant's keys, made on first use */
  const get = async (tenant: string): Promise<TenantKeys> => {
    const existing = await find(tenant);
    if (existing) return existing;
    const fresh: TenantKeys = { primary: newKey(), secondary: newKey(), signWith: 'primary', generation: 0 };
    // Two PAC instances racing here must agree on one pair.
    if (await store.set(key(tenant), await sealed(tenant, fresh), { ifAbsent: true })) return fresh;
    return (await find(tenant))!;
  };
  return {
    /** the tenant's keys, or undefined when no SAS key was ever minted for it */
    find,
    get,
    /**
     * One rights policy's keys, as Azure shows them: derived from the primary and the secondary
     * namespace key, so a rotation rotates them too. Made on first use, like the namespace keys.
     */
    async policyKeys(tenant: string, keyName: KeyName): Promise<{ primary: string; secondary: string }> {
      const keys = await get(tenant);
      return { primary: policyKey(keys.primary, keyName), secondary: policyKey(keys.secondary, keyName) };
    },
    /** the namespace key new SAS keys for the tenant are signed with */
    async signingKey(tenant: string): Promise<string> {
      const keys = await get(tenant);
      return keys[keys.signWith];
    },
    /**
     * Regenerates one key and signs new SAS keys with it from now on. Keys signed with the other one
     * keep verifying; keys signed with the replaced one stop verifying. Undefined for a tenant with
     * no keys (nothing was ever minted, so there is nothing to rotate).
     */
    async rotate(tenant: string, which: TenantKeyName): Promise<TenantKeys | undefined> {
      for (let attempt = 0; attempt < MAX_ROTATE_ATTEMPTS; attempt += 1) {
        const current = await read(tenant);
        if (current === undefined) return undefined;
        const rotated: TenantKeys = { ...current.keys, [which]: newKey(), signWith: which, generation: current.keys.generation + 1 };
        // Compare-and-set: a rotation of the other key racing with this one must not be lost.
        if (await store.compareAndSet(key(tenant), current.raw, await sealed(tenant, rotated))) return rotated;
      }
      throw new Conflict('the tenant keys kept changing during the rotation; retry', `tenant ${tenant}`);
    },
  };
}
export type TenantKeyStore = ReturnType<typeof tenantKeys>;
