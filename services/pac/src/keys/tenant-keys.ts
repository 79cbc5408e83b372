import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Store } from '@keyway/store';

const Keys = z.object({ primary: z.string(), secondary: z.string() });
export type TenantKeys = z.infer<typeof Keys>;

const newKey = () => randomBytes(32).toString('base64');

/**
 * Each tenant has a primary and a secondary namespace key: new SAS keys are signed with the primary,
 * verifiers accept both, so either can be regenerated without breaking holders of the other.
 */
export function tenantKeys(store: Store) {
  const key = (tenant: string) => `tenant-keys:${tenant}`;
  const find = async (tenant: string): Promise<TenantKeys | undefined> => {
    const raw = await store.get(key(tenant));
    return raw ? Keys.parse(JSON.parse(raw)) : undefined;
  };
  return {
    /** the tenant's keys, or undefined when no SAS key was ever minted for it */
    find,
    /** the tenant's keys, made on first use */
    async get(tenant: string): Promise<TenantKeys> {
      const existing = await find(tenant);
      if (existing) return existing;
      const fresh = { primary: newKey(), secondary: newKey() };
      // Two PAC instances racing here must agree on one pair.
      if (await store.set(key(tenant), JSON.stringify(fresh), { ifAbsent: true })) return fresh;
      return Keys.parse(JSON.parse((await store.get(key(tenant)))!));
    },
  };
}
export type TenantKeyStore = ReturnType<typeof tenantKeys>;
