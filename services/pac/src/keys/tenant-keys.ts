import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { TenantKeyName } from '@keyway/contracts';
import { Conflict } from '@keyway/kit';
import { policyKey, type KeyName } from '@keyway/sas';
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

/**
 * Each tenant has a primary and a secondary namespace key: new SAS keys are signed with one of them
 * (`signWith`), verifiers accept both, so either can be regenerated without breaking holders of the
 * other (design.md, "Tokens and keys").
 */
export function tenantKeys(store: Store) {
  const key = (tenant: string) => `tenant-keys:${tenant}`;
  const find = async (tenant: string): Promise<TenantKeys | undefined> => {
    const raw = await store.get(key(tenant));
    return raw ? Keys.parse(JSON.parse(raw)) : undefined;
  };
  /** the tenant's keys, made on first use */
  const get = async (tenant: string): Promise<TenantKeys> => {
    const existing = await find(tenant);
    if (existing) return existing;
    const fresh: TenantKeys = { primary: newKey(), secondary: newKey(), signWith: 'primary', generation: 0 };
    // Two PAC instances racing here must agree on one pair.
    if (await store.set(key(tenant), JSON.stringify(fresh), { ifAbsent: true })) return fresh;
    return Keys.parse(JSON.parse((await store.get(key(tenant)))!));
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
        const raw = await store.get(key(tenant));
        if (raw === null) return undefined;
        const current = Keys.parse(JSON.parse(raw));
        const rotated: TenantKeys = { ...current, [which]: newKey(), signWith: which, generation: current.generation + 1 };
        // Compare-and-set: a rotation of the other key racing with this one must not be lost.
        if (await store.compareAndSet(key(tenant), raw, JSON.stringify(rotated))) return rotated;
      }
      throw new Conflict('the tenant keys kept changing during the rotation; retry', `tenant ${tenant}`);
    },
  };
}
export type TenantKeyStore = ReturnType<typeof tenantKeys>;
