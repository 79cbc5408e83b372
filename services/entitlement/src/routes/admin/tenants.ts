import { Router, type RequestHandler } from 'express';
import { entitlementRoutes, Tenant, TenantPage } from '@keyway/contracts';
import { bindRoute, requireBodyType, shapeResponse } from '@keyway/kit';
import type { Admin } from '../../admin/operations.ts';
import type { PolicyRepository } from '../../policy/repository.ts';

/**
 * /v1/tenants: create, list (paged by id), get, rename, suspend / resume, delete. Suspending
 * revokes the tenant's sessions and SAS keys (tenant.suspended); deleting is refused (409) until
 * the tenant is suspended.
 */
/** `recentLogin`: the step-up (RFC 9470) a tenant delete needs besides the operator check. */
export function tenantRoutes(policy: PolicyRepository, admin: Admin, recentLogin: RequestHandler): Router {
  const router = Router();
  bindRoute(router, entitlementRoutes.createTenant, requireBodyType(entitlementRoutes.createTenant), async (req, res, input) => {
    res.status(201).json(shapeResponse(Tenant, await admin(req).createTenant(input.body())));
  });

  bindRoute(router, entitlementRoutes.listTenants, async (_req, res, input) => {
    const { limit, cursor } = input.query();
    const { tenants, next } = await policy.listTenants(limit, cursor);
    res.json(shapeResponse(TenantPage, { tenants, next_cursor: next }));
  });

  bindRoute(router, entitlementRoutes.getTenant, async (_req, res, input) => {
    const { tenant } = input.params();
    res.json(shapeResponse(Tenant, await policy.getTenant(tenant)));
  });

  bindRoute(router, entitlementRoutes.updateTenant, requireBodyType(entitlementRoutes.updateTenant), async (req, res, input) => {
    const { tenant } = input.params();
    const { name } = input.body();
    res.json(shapeResponse(Tenant, await admin(req).renameTenant(tenant, name)));
  });

  bindRoute(router, entitlementRoutes.suspendTenant, async (req, res, input) => {
    const { tenant } = input.params();
    res.json(shapeResponse(Tenant, await admin(req).suspendTenant(tenant, 'operator')));
  });

  bindRoute(router, entitlementRoutes.resumeTenant, async (req, res, input) => {
    const { tenant } = input.params();
    res.json(shapeResponse(Tenant, await admin(req).resumeTenant(tenant)));
  });

  bindRoute(router, entitlementRoutes.deleteTenant, recentLogin, async (req, res, input) => {
    const { tenant } = input.params();
    await admin(req).deleteTenant(tenant);
    res.status(204).end();
  });
  return router;
}
