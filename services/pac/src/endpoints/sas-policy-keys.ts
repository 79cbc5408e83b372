import { Router, type RequestHandler } from 'express';
import { audited, mergeFields, requestFields, type AuditLog } from '@keyway/audit';
import { pacRoutes, SasPolicyKeys } from '@keyway/contracts';
import { bindRoute, shapeResponse } from '@keyway/kit';
import type { TenantKeyStore } from '../keys/tenant-keys.ts';

/**
 * GET /admin/v1/tenants/:tenant/sas-policies/:key_name (operator certificate or operator bearer
 * token, as `authenticate` checks): one rights policy's primary and secondary keys, as Azure lists a
 * shared access policy's keys. With the key name and one key, Azure's SDKs (say @azure/core-amqp's
 * createSasTokenProvider) mint SAS keys for the tenant's topics with exactly that policy's rights:
 * each policy has its own key, so a listen key signs nothing the topic service takes as send.
 * Every read is recorded as sas_policy_keys.read with the operator as actor, and the key leaves only
 * once that record is written (style rule 10); the record names the policy, never the key.
 */
export function sasPolicyKeysEndpoint(keys: TenantKeyStore, authenticate: RequestHandler, audit: AuditLog): Router {
  const router = Router();
  bindRoute(router, pacRoutes.sasPolicyKeys, authenticate, async (req, res, input) => {
    const { tenant, key_name } = input.params();
    const fields = mergeFields(requestFields(req), { tenant, detail: { key_name } });
    const policy = await audited({ audit }, { action: 'sas_policy_keys.read', fields, writable: true, refusal: false }, () => keys.policyKeys(tenant, key_name));
    req.log.info('sas_policy_keys.read', { tenant, keyName: key_name });
    res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' }).json(shapeResponse(SasPolicyKeys, { tenant, key_name, primary_key: policy.primary, secondary_key: policy.secondary }));
  });
  return router;
}
