import { Router } from 'express';
import { CreateUser, SetPassword, UpdateRoles, UpdateUser, User, UserList } from '@keyway/contracts';
import { parseInput, requireContentType, shapeResponse } from '@keyway/kit';
import type { Admin } from '../../admin/operations.ts';
import type { PolicyRepository } from '../../policy/repository.ts';
import { TenantPath, UserPath } from './paths.ts';

/**
 * /v1/tenants/:tenant/users…: create, list, get, update (email, roles), set the password, delete.
 * Removing roles, setting a password and deleting announce role.removed, credentials.changed and
 * user.removed, which end the user's sessions and SAS keys.
 */
export function userRoutes(policy: PolicyRepository, admin: Admin): Router {
  const router = Router();
  const json = requireContentType('application/json');

  router.post('/v1/tenants/:tenant/users', json, async (req, res) => {
    const { tenant } = parseInput(TenantPath, req.params, 'path');
    const input = parseInput(CreateUser, req.body, 'body');
    res.status(201).json(shapeResponse(User, await admin(req).createUser(tenant, input)));
  });

  router.get('/v1/tenants/:tenant/users', async (req, res) => {
    const { tenant } = parseInput(TenantPath, req.params, 'path');
    await policy.getTenant(tenant);
    res.json(shapeResponse(UserList, { users: await policy.listUsers(tenant) }));
  });

  router.get('/v1/tenants/:tenant/users/:user', async (req, res) => {
    const { tenant, user } = parseInput(UserPath, req.params, 'path');
    res.json(shapeResponse(User, await policy.getUser(tenant, user)));
  });

  router.patch('/v1/tenants/:tenant/users/:user', json, async (req, res) => {
    const { tenant, user } = parseInput(UserPath, req.params, 'path');
    const change = parseInput(UpdateUser, req.body, 'body');
    res.json(shapeResponse(User, await admin(req).updateUser(tenant, user, change)));
  });

  router.put('/v1/tenants/:tenant/users/:user/roles', json, async (req, res) => {
    const { tenant, user } = parseInput(UserPath, req.params, 'path');
    const { roles } = parseInput(UpdateRoles, req.body, 'body');
    res.json(shapeResponse(User, await admin(req).updateUser(tenant, user, { roles })));
  });

  router.put('/v1/tenants/:tenant/users/:user/password', json, async (req, res) => {
    const { tenant, user } = parseInput(UserPath, req.params, 'path');
    const { password } = parseInput(SetPassword, req.body, 'body');
    await admin(req).setPassword(tenant, user, password);
    res.status(204).end();
  });

  router.delete('/v1/tenants/:tenant/users/:user', async (req, res) => {
    const { tenant, user } = parseInput(UserPath, req.params, 'path');
    await admin(req).deleteUser(tenant, user);
    res.status(204).end();
  });
  return router;
}
