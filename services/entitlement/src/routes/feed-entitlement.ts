import { Router } from 'express';
import { entitlementRoutes, FeedEntitlement } from '@keyway/contracts';
import { bindRoute, shapeResponse } from '@keyway/kit';
import type { PolicyRepository } from '../policy/repository.ts';

/**
 * GET /internal/v1/tenants/:tenant/feeds/:feed (audit service only): whether the tenant has the feed.
 * The audit service exports a tenant's trail only while the tenant has the `audit` feed, and asks
 * here rather than reading this service's store. A tenant that does not exist has no feed.
 */
export function feedEntitlementRoutes(policy: PolicyRepository): Router {
  const router = Router();
  bindRoute(router, entitlementRoutes.feedEntitlement, async (_req, res, input) => {
    const { tenant, feed } = input.params();
    const entitled = (await policy.findTenant(tenant))?.feeds.includes(feed) ?? false;
    res.set('Cache-Control', 'no-store').json(shapeResponse(FeedEntitlement, { tenant, feed, entitled }));
  });
  return router;
}
