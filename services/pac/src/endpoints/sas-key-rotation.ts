import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { SasKeyRotation, SasKeyRotationRequest, TenantId } from '@keyway/contracts';
import { NotFound, parseInput, requireContentType, shapeResponse } from '@keyway/kit';
import type { TenantKeyStore } from '../keys/tenant-keys.ts';

/**
 * POST /admin/v1/tenants/:tenant/sas-keys/rotate (operator certificate or operator bearer token, as
 * `authenticate` checks), body { key }: the named namespace key is regenerated and signs new SAS keys
 * from now on; keys signed with the other one keep verifying (design.md, "Tokens and keys"). The
 * answer names keys, never their material. The topic service sees the new keys at once for keys signed with them (it refetches on a signature
 * mismatch) and stops accepting keys signed with the replaced one within its key cache period.
 */
export function sasKeyRotationEndpoint(keys: TenantKeyStore, authenticate: RequestHandler): Router {
  const router = Router();
  router.post('/admin/v1/tenants/:tenant/sas-keys/rotate', authenticate, requireContentType('application/json'), async (req, res) => {
    const { tenant } = parseInput(z.object({ tenant: TenantId }), req.params, 'path');
    const { key } = parseInput(SasKeyRotationRequest, req.body, 'body');
    const rotated = await keys.rotate(tenant, key);
    if (!rotated) throw new NotFound(`no SAS keys for tenant ${tenant}`);
    req.log.info('tenant_sas_key.rotated', { tenant, rotated: key, signingWith: rotated.signWith });
    res.set('Cache-Control', 'no-store').json(shapeResponse(SasKeyRotation, { tenant, rotated: key, signing_with: rotated.signWith }));
  });
  return router;
}
