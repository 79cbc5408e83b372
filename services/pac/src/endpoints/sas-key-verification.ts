import { Router } from 'express';
import { pacRoutes, SasKeyCheck, tenantOfTopicResource } from '@keyway/contracts';
import { bindRoute, requireBodyType, shapeResponse } from '@keyway/kit';
import { parseSas, SasError, verifySasSignature } from '@keyway/sas';
import type { TenantKeyStore } from '../keys/tenant-keys.ts';

/**
 * POST /internal/v1/sas-keys/verify (topic service only, mTLS), body { sas_key }: is the signature
 * genuine? Checked here against the keys of the tenant the key's own resource URI names, so the
 * namespace keys never leave PAC: a stolen topic certificate can ask about keys it holds, not make
 * them (issue 9). The topic service checks expiry, resource and rights on the fields answered.
 * Nothing changes state, so nothing is audited; nothing about the key is logged but its id.
 */
export function sasKeyVerificationEndpoint(keys: TenantKeyStore, options: { topicBaseUrl: string }): Router {
  const router = Router();
  bindRoute(router, pacRoutes.verifySasKey, requireBodyType(pacRoutes.verifySasKey), async (_req, res, input) => {
    const { sas_key } = input.body();
    res.set('Cache-Control', 'no-store').json(shapeResponse(SasKeyCheck, await check(sas_key)));
  });

  async function check(sasKey: string): Promise<SasKeyCheck> {
    try {
      const tenant = tenantOfTopicResource(options.topicBaseUrl, parseSas(sasKey).resource);
      // Looking keys up never makes them: a made-up tenant name costs nothing and is simply unknown.
      const found = tenant === undefined ? undefined : await keys.find(tenant);
      if (!found) return { valid: false };
      const verified = verifySasSignature(sasKey, [found.primary, found.secondary]);
      return { valid: true, key_id: verified.keyId, resource: verified.resource, key_name: verified.keyName, expiry: verified.expiry, generation: found.generation };
    } catch (err) {
      if (err instanceof SasError) return { valid: false };
      throw err;
    }
  }
  return router;
}
