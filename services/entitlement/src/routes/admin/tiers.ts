import { Router } from 'express';
import { PutTier, SetTenantTier, Tenant, Tier, TierList } from '@keyway/contracts';
import { parseInput, requireContentType, shapeResponse } from '@keyway/kit';
import type { Admin } from '../../admin/operations.ts';
import type { PolicyRepository } from '../../policy/repository.ts';
import { TenantPath, TierPath } from './paths.ts';

/**
 * Product tiers: a named set of feeds. Putting a tenant on a tier makes its feeds the tier's;
 * changing a tier changes the feeds of every tenant on it. Either way a feed no longer included is
 * removed (feed.removed), and a feed granted by hand lasts until the tenant's tier is applied again.
 */
export function tierRoutes(policy: PolicyRepository, admin: Admin): Router {
  const router = Router();
  const json = requireContentType('application/json');

  router.get('/v1/tiers', async (_req, res) => {
    res.json(shapeResponse(TierList, { tiers: await policy.listTiers() }));
  });

  router.get('/v1/tiers/:tier', async (req, res) => {
    const { tier } = parseInput(TierPath, req.params, 'path');
    res.json(shapeResponse(Tier, await policy.getTier(tier)));
  });

  router.put('/v1/tiers/:tier', json, async (req, res) => {
    const { tier: id } = parseInput(TierPath, req.params, 'path');
    const input = parseInput(PutTier, req.body, 'body');
    const { tier, created } = await admin(req).putTier(id, input);
    res.status(created ? 201 : 200).json(shapeResponse(Tier, tier));
  });

  router.put('/v1/tenants/:tenant/tier', json, async (req, res) => {
    const { tenant } = parseInput(TenantPath, req.params, 'path');
    const { tier } = parseInput(SetTenantTier, req.body, 'body');
    res.json(shapeResponse(Tenant, await admin(req).setTenantTier(tenant, tier)));
  });
  return router;
}
