import { Router } from 'express';
import { z } from 'zod';
import { TenantId, TenantSasKeys } from '@keyway/contracts';
import { NotFound, parseInput, requireInternal, shapeResponse } from '@keyway/kit';
import type { TenantKeyStore } from '../keys/tenant-keys.ts';

/** GET /internal/v1/tenants/:tenant/sas-keys (topic service only, mTLS): what SAS keys are checked against. */
export function tenantKeysEndpoint(keys: TenantKeyStore): Router {
  const router = Router();
  router.get('/internal/v1/tenants/:tenant/sas-keys', requireInternal('pac', 'GET /internal/v1/tenants/:tenant/sas-keys'), async (req, res) => {
    const { tenant } = parseInput(z.object({ tenant: TenantId }), req.params, 'path');
    // Looking keys up never makes them: a made-up tenant name costs nothing and is simply unknown.
    const found = await keys.find(tenant);
    if (!found) throw new NotFound(`no SAS keys for tenant ${tenant}`);
    res.set('Cache-Control', 'no-store').json(shapeResponse(TenantSasKeys, { tenant, ...found }));
  });
  return router;
}
