import { Router, type RequestHandler } from 'express';
import { audited, requestFields, type AuditLog } from '@keyway/audit';
import { pacRoutes, SasKeyRotation } from '@keyway/contracts';
import { bindRoute, NotFound, requireBodyType, shapeResponse } from '@keyway/kit';
import type { TenantKeyStore } from '../keys/tenant-keys.ts';

/**
 * POST /admin/v1/tenants/:tenant/sas-keys/rotate (operator certificate or operator bearer token, as
 * `authenticate` checks), body { key }: the named namespace key is regenerated and signs new SAS keys
 * from now on; keys signed with the other one keep verifying (design.md, "Tokens and keys"). The
 * answer names keys, never their material. The topic service sees the new keys at once for keys signed with them (it refetches on a signature
 * mismatch) and stops accepting keys signed with the replaced one within its key cache period.
 * Recorded as tenant_keys.rotated with the operator as actor; when the trail cannot take it the answer
 * is server_error (checked before rotating, so only a trail failing in between leaves a rotation
 * unrecorded).
 */
export function sasKeyRotationEndpoint(keys: TenantKeyStore, authenticate: readonly RequestHandler[], audit: AuditLog): Router {
  const router = Router();
  bindRoute(router, pacRoutes.rotateSasKey, ...authenticate, requireBodyType(pacRoutes.rotateSasKey), async (req, res, input) => {
    const { tenant } = input.params();
    const { key } = input.body();
    const rotated = await audited({ audit }, { action: 'tenant_keys.rotated', fields: { ...requestFields(req), tenant }, writable: true, refusal: false }, async (step) => {
      const done = await keys.rotate(tenant, key);
      if (!done) throw new NotFound(`no SAS keys for tenant ${tenant}`);
      req.log.info('tenant_sas_key.rotated', { tenant, rotated: key, signingWith: done.signWith });
      step.note({ detail: { rotated: key, signing_with: done.signWith } });
      return done;
    });
    res.set('Cache-Control', 'no-store').json(shapeResponse(SasKeyRotation, { tenant, rotated: key, signing_with: rotated.signWith }));
  });
  return router;
}
