import { describe, expect, it } from 'vitest';
import { ApiError, UnreachableError } from '@keyway/clients';
import { pacSasKeys } from './pac-keys.ts';

describe('pacSasKeys', () => {
  const answering = (answer: () => Promise<{ tenant: string; primary: string; secondary: string }>) => pacSasKeys({ tenantKeys: answer });

  it('returns [primary, secondary]', async () => {
    await expect(answering(async () => ({ tenant: 'acme', primary: 'p', secondary: 's' }))('acme')).resolves.toEqual(['p', 's']);
  });

  it('returns no keys for a tenant PAC does not know (404), so its keys fail as forgeries', async () => {
    await expect(answering(() => Promise.reject(new ApiError(404, 'not_found', 'no such tenant')))('ghost')).resolves.toEqual([]);
  });

  it('rejects when PAC is unreachable or refuses us, so the guard fails closed', async () => {
    await expect(answering(() => Promise.reject(new UnreachableError('pac', 'ECONNREFUSED')))('acme')).rejects.toBeInstanceOf(UnreachableError);
    await expect(answering(() => Promise.reject(new ApiError(403, 'access_denied', 'not topic')))('acme')).rejects.toBeInstanceOf(ApiError);
  });
});
