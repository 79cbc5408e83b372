import { ApiError, type PacClient } from '@keyway/clients';
import type { SasKeySource } from './tenant-keys.ts';

/**
 * The production key source: PAC's internal tenant-keys API (mTLS with this service's certificate).
 * An unknown tenant (404) has no keys, so its SAS keys fail like forgeries (401); any other failure
 * rejects, which the guard answers with 503 (fail closed).
 */
export function pacSasKeys(pac: Pick<PacClient, 'tenantKeys'>): SasKeySource {
  return async (tenant) => {
    try {
      const { primary, secondary } = await pac.tenantKeys(tenant);
      return [primary, secondary];
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return [];
      throw err;
    }
  };
}
