import { Router } from 'express';
import { entitlementRoutes, Tenant, Tier, TierList } from '@keyway/contracts';
import { bindRoute, requireBodyType, shapeResponse } from '@keyway/kit';
import type { Admin } from '../../admin/operations.ts';
import type { PolicyRepository } from '../../policy/repository.ts';

/**
 * Product tiers: a named set of feeds. Putting a tenant on a tier makes its feeds the tier's;
 * changing a tier changes the feeds of every tenant on it. Either way a feed no longer included is
 * removed (feed.removed), and a feed granted by hand lasts until the tenant's tier is applied again.
 */
export function tierRoutes(policy: PolicyRepository, admin: Admin): Router {
  const router = Router();
  bindRoute(router, entitlementRoutes.listTiers, async (_req, res) => {
    res.json(shapeResponse(TierList, { tiers: await policy.listTiers() }));
  });

  bindRoute(router, entitlementRoutes.getTier, async (_req, res, input) => {
    const { tier } = input.params();
    res.json(shapeResponse(Tier, await policy.getTier(tier)));
  });

  bindRoute(router, entitlementRoutes.putTier, requireBodyType(entitlementRoutes.putTier), async (req, res, input) => {
    const { tier: id } = input.params();
    const { tier, created } = await admin(req).putTier(id, input.body());
    res.status(created ? 201 : 200).json(shapeResponse(Tier, tier));
  });

  bindRoute(router, entitlementRoutes.setTenantTier, requireBodyType(entitlementRoutes.setTenantTier), async (req, res, input) => {
    const { tenant } = input.params();
    const { tier } = input.body();
    res.json(shapeResponse(Tenant, await admin(req).setTenantTier(tenant, tier)));
  });
  return router;
}
