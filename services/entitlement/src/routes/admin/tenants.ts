import { Router } from 'express';
import { z } from 'zod';
import { CreateTenant, CreateUser, FeedName, TenantId, User } from '@keyway/contracts';
import { parseInput, requireContentType, shapeResponse } from '@keyway/kit';
import type { IdpClient } from '@keyway/clients';
import type { PolicyRepository } from '../../policy/repository.ts';

const TenantPath = z.object({ tenant: TenantId });
const FeedPath = TenantPath.extend({ feed: FeedName });

/** /v1/tenants…: the operator's admin API. */
export function tenantRoutes(policy: PolicyRepository, idp: IdpClient): Router {
  const router = Router();
  const json = requireContentType('application/json');

  router.post('/v1/tenants', json, async (req, res) => {
    const input = parseInput(CreateTenant, req.body, 'body');
    res.status(201).json(await policy.createTenant(input));
  });

  router.get('/v1/tenants/:tenant', async (req, res) => {
    const { tenant } = parseInput(TenantPath, req.params, 'path');
    res.json(await policy.getTenant(tenant));
  });

  router.put('/v1/tenants/:tenant/feeds/:feed', async (req, res) => {
    const { tenant, feed } = parseInput(FeedPath, req.params, 'path');
    const current = await policy.getTenant(tenant);
    const feeds = current.feeds.includes(feed) ? current.feeds : [...current.feeds, feed];
    res.json(await policy.saveTenant({ ...current, feeds }));
  });

  router.post('/v1/tenants/:tenant/users', json, async (req, res) => {
    const { tenant } = parseInput(TenantPath, req.params, 'path');
    const input = parseInput(CreateUser, req.body, 'body');
    await policy.getTenant(tenant);
    const user = await policy.createUser(tenant, input);
    try {
      await idp.register({ sub: user.id, tenant, email: user.email, password: input.password });
    } catch (err) {
      await policy.deleteUser(user);
      throw err;
    }
    res.status(201).json(shapeResponse(User, user));
  });

  router.get('/v1/tenants/:tenant/users', async (req, res) => {
    const { tenant } = parseInput(TenantPath, req.params, 'path');
    await policy.getTenant(tenant);
    res.json({ users: await policy.listUsers(tenant) });
  });
  return router;
}
