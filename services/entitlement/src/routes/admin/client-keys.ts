import { Router } from 'express';
import { entitlementRoutes, RegisteredClientKey } from '@keyway/contracts';
import { bindRoute, requireBodyType, shapeResponse } from '@keyway/kit';
import type { Admin } from '../../admin/operations.ts';

/**
 * PUT and DELETE /v1/tenants/:tenant/users/:user/keys/:kid: the public keys a user's agent signs
 * RFC 7523 client assertions with (passwordless agents). The IdP holds them; the admin operations
 * check the user belongs to the tenant first.
 */
export function clientKeyRoutes(admin: Admin): Router {
  const router = Router();
  bindRoute(router, entitlementRoutes.registerKey, requireBodyType(entitlementRoutes.registerKey), async (req, res, input) => {
    const { tenant, user, kid } = input.params();
    const { jwk } = input.body();
    const { created, ...registered } = await admin(req).registerKey(tenant, user, kid, jwk);
    res.status(created ? 201 : 200).json(shapeResponse(RegisteredClientKey, registered));
  });

  bindRoute(router, entitlementRoutes.removeKey, async (req, res, input) => {
    const { tenant, user, kid } = input.params();
    await admin(req).removeKey(tenant, user, kid);
    res.status(204).end();
  });
  return router;
}
