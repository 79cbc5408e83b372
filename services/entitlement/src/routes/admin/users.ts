import { Router } from 'express';
import { entitlementRoutes, User, UserList } from '@keyway/contracts';
import { bindRoute, requireBodyType, shapeResponse } from '@keyway/kit';
import type { Admin } from '../../admin/operations.ts';
import type { PolicyRepository } from '../../policy/repository.ts';

/**
 * /v1/tenants/:tenant/users…: create, list, get, update (email, roles), set the password, delete.
 * Removing roles, setting a password and deleting announce role.removed, credentials.changed and
 * user.removed, which end the user's sessions and SAS keys.
 */
export function userRoutes(policy: PolicyRepository, admin: Admin): Router {
  const router = Router();
  bindRoute(router, entitlementRoutes.createUser, requireBodyType(entitlementRoutes.createUser), async (req, res, input) => {
    const { tenant } = input.params();
    res.status(201).json(shapeResponse(User, await admin(req).createUser(tenant, input.body())));
  });

  bindRoute(router, entitlementRoutes.listUsers, async (_req, res, input) => {
    const { tenant } = input.params();
    await policy.getTenant(tenant);
    res.json(shapeResponse(UserList, { users: await policy.listUsers(tenant) }));
  });

  bindRoute(router, entitlementRoutes.getUser, async (_req, res, input) => {
    const { tenant, user } = input.params();
    res.json(shapeResponse(User, await policy.getUser(tenant, user)));
  });

  bindRoute(router, entitlementRoutes.updateUser, requireBodyType(entitlementRoutes.updateUser), async (req, res, input) => {
    const { tenant, user } = input.params();
    const change = input.body();
    res.json(shapeResponse(User, await admin(req).updateUser(tenant, user, change)));
  });

  bindRoute(router, entitlementRoutes.setRoles, requireBodyType(entitlementRoutes.setRoles), async (req, res, input) => {
    const { tenant, user } = input.params();
    const { roles } = input.body();
    res.json(shapeResponse(User, await admin(req).updateUser(tenant, user, { roles })));
  });

  bindRoute(router, entitlementRoutes.setPassword, requireBodyType(entitlementRoutes.setPassword), async (req, res, input) => {
    const { tenant, user } = input.params();
    const { password } = input.body();
    await admin(req).setPassword(tenant, user, password);
    res.status(204).end();
  });

  bindRoute(router, entitlementRoutes.deleteUser, async (req, res, input) => {
    const { tenant, user } = input.params();
    await admin(req).deleteUser(tenant, user);
    res.status(204).end();
  });
  return router;
}
