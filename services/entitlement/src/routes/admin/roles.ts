import { Router } from 'express';
import { entitlementRoutes, Role, ROLE_DESCRIPTIONS, RoleList } from '@keyway/contracts';
import { bindRoute, shapeResponse } from '@keyway/kit';

/** GET /v1/roles: the fixed role set; roles are assigned to users (PUT …/users/:user/roles). */
export function roleRoutes(): Router {
  const router = Router();
  const roles = shapeResponse(RoleList, { roles: Role.options.map((name) => ({ name, description: ROLE_DESCRIPTIONS[name] })) });
  bindRoute(router, entitlementRoutes.listRoles, (_req, res) => {
    res.json(roles);
  });
  return router;
}
