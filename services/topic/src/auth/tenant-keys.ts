import { forgetOnFailure, setBounded } from '../bounded-cache.ts';

/**
 * The tenant's namespace keys [primary, secondary]. Resolves [] for a tenant the key source does
 * not know; rejects when the source cannot answer (PAC unreachable), which callers must turn into
 * 503, never into "allow".
 */
export type SasKeySource = (tenant: string) => Promise<string[]>;

export interface KeysEntry {
  keys: string[];
  fetchedAt: number;
}

/** How stale a cache entry must be before a signature mismatch may refetch it (bounds PAC calls per tenant). */
const REFETCH_AFTER_MS = 1000;
/** Path tenants are caller-chosen; bound the cache so made-up names cannot grow it without end. */
const MAX_TENANTS = 10_000;

/**
 * Keys per tenant for ttlMs. Concurrent lookups share one fetch; failed fetches are not cached.
 * `refetch` replaces an entry only if it is still the one the caller saw, so a burst of requests
 * signed with a just-rotated key causes one PAC call, not one each.
 */
export function tenantKeyCache(source: SasKeySource, options: { ttlMs: number; now: () => number }) {
  const entries = new Map<string, { keys: Promise<string[]>; fetchedAt: number }>();

  const fetch = (tenant: string) => {
    const entry = { keys: source(tenant), fetchedAt: options.now() };
    setBounded(entries, tenant, entry, MAX_TENANTS);
    forgetOnFailure(entries, tenant, entry, entry.keys);
    return entry;
  };

  const resolve = async (entry: { keys: Promise<string[]>; fetchedAt: number }): Promise<KeysEntry> => ({
    keys: await entry.keys,
    fetchedAt: entry.fetchedAt,
  });

  return {
    get(tenant: string): Promise<KeysEntry> {
      const entry = entries.get(tenant);
      return resolve(entry && options.now() - entry.fetchedAt < options.ttlMs ? entry : fetch(tenant));
    },
    /** fresh keys after `seen` failed to verify, unless someone refetched meanwhile or `seen` is too young */
    refetch(tenant: string, seen: KeysEntry): Promise<KeysEntry> | undefined {
      const current = entries.get(tenant);
      if (current && current.fetchedAt > seen.fetchedAt) return resolve(current);
      if (options.now() - seen.fetchedAt < REFETCH_AFTER_MS) return undefined;
      return resolve(fetch(tenant));
    },
  };
}
export type TenantKeyCache = ReturnType<typeof tenantKeyCache>;
