import { Router } from 'express';
import { Role, ROLE_DESCRIPTIONS, RoleList } from '@keyway/contracts';
import { shapeResponse } from '@keyway/kit';

/** GET /v1/roles: the fixed role set; roles are assigned to users (PUT …/users/:user/roles). */
export function roleRoutes(): Router {
  const router = Router();
  const roles = shapeResponse(RoleList, { roles: Role.options.map((name) => ({ name, description: ROLE_DESCRIPTIONS[name] })) });
  router.get('/v1/roles', (_req, res) => {
    res.json(roles);
  });
  return router;
}
