import { Router } from 'express';
import { z } from 'zod';
import { ClientKeyId, ClientKeyRegistration, RegisteredClientKey, TenantId } from '@keyway/contracts';
import { parseInput, requireContentType, shapeResponse } from '@keyway/kit';
import type { Admin } from '../../admin/operations.ts';

const KeyPath = z.object({ tenant: TenantId, user: z.string().min(1).max(128), kid: ClientKeyId });

/**
 * PUT and DELETE /v1/tenants/:tenant/users/:user/keys/:kid: the public keys a user's agent signs
 * RFC 7523 client assertions with (passwordless agents). The IdP holds them; the admin operations
 * check the user belongs to the tenant first.
 */
export function clientKeyRoutes(admin: Admin): Router {
  const router = Router();
  const path = '/v1/tenants/:tenant/users/:user/keys/:kid';

  router.put(path, requireContentType('application/json'), async (req, res) => {
    const { tenant, user, kid } = parseInput(KeyPath, req.params, 'path');
    const { jwk } = parseInput(ClientKeyRegistration, req.body, 'body');
    const { created, ...registered } = await admin(req).registerKey(tenant, user, kid, jwk);
    res.status(created ? 201 : 200).json(shapeResponse(RegisteredClientKey, registered));
  });

  router.delete(path, async (req, res) => {
    const { tenant, user, kid } = parseInput(KeyPath, req.params, 'path');
    await admin(req).removeKey(tenant, user, kid);
    res.status(204).end();
  });
  return router;
}
