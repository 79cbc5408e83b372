import { Router } from 'express';
import { CreateTenant, Tenant, TenantPage, TenantPageQuery, UpdateTenant } from '@keyway/contracts';
import { parseInput, requireContentType, shapeResponse } from '@keyway/kit';
import type { Admin } from '../../admin/operations.ts';
import type { PolicyRepository } from '../../policy/repository.ts';
import { TenantPath } from './paths.ts';

/**
 * /v1/tenants: create, list (paged by id), get, rename, suspend / resume, delete. Suspending
 * revokes the tenant's sessions and SAS keys (tenant.suspended); deleting is refused (409) until
 * the tenant is suspended.
 */
export function tenantRoutes(policy: PolicyRepository, admin: Admin): Router {
  const router = Router();
  const json = requireContentType('application/json');

  router.post('/v1/tenants', json, async (req, res) => {
    const input = parseInput(CreateTenant, req.body, 'body');
    res.status(201).json(shapeResponse(Tenant, await admin(req).createTenant(input)));
  });

  router.get('/v1/tenants', async (req, res) => {
    const { limit, cursor } = parseInput(TenantPageQuery, req.query, 'query');
    const { tenants, next } = await policy.listTenants(limit, cursor);
    res.json(shapeResponse(TenantPage, { tenants, next_cursor: next }));
  });

  router.get('/v1/tenants/:tenant', async (req, res) => {
    const { tenant } = parseInput(TenantPath, req.params, 'path');
    res.json(shapeResponse(Tenant, await policy.getTenant(tenant)));
  });

  router.patch('/v1/tenants/:tenant', json, async (req, res) => {
    const { tenant } = parseInput(TenantPath, req.params, 'path');
    const { name } = parseInput(UpdateTenant, req.body, 'body');
    res.json(shapeResponse(Tenant, await admin(req).renameTenant(tenant, name)));
  });

  router.post('/v1/tenants/:tenant/suspend', async (req, res) => {
    const { tenant } = parseInput(TenantPath, req.params, 'path');
    res.json(shapeResponse(Tenant, await admin(req).suspendTenant(tenant, 'operator')));
  });

  router.post('/v1/tenants/:tenant/resume', async (req, res) => {
    const { tenant } = parseInput(TenantPath, req.params, 'path');
    res.json(shapeResponse(Tenant, await admin(req).resumeTenant(tenant)));
  });

  router.delete('/v1/tenants/:tenant', async (req, res) => {
    const { tenant } = parseInput(TenantPath, req.params, 'path');
    await admin(req).deleteTenant(tenant);
    res.status(204).end();
  });
  return router;
}
