import { Router } from 'express';
import { ANY_FEED, entitlementRoutes, SubscriptionNames } from '@keyway/contracts';
import { bindRoute, shapeResponse } from '@keyway/kit';
import type { PolicyRepository } from '../policy/repository.ts';

/**
 * GET /internal/v1/tenants/:tenant/feeds/:feed/subscriptions (topic service only): the names of the
 * feed's listed subscriptions. The topic service receives from these (and `default`) alone, so a
 * listen key cannot make queues up by naming them. A tenant that does not exist, or does not have
 * the feed, lists none.
 */
export function subscriptionInventoryRoutes(policy: PolicyRepository): Router {
  const router = Router();
  bindRoute(router, entitlementRoutes.subscriptionNames, async (_req, res, input) => {
    const { tenant, feed } = input.params();
    const record = await policy.findTenant(tenant);
    const names = record?.feeds.includes(feed) ? (await policy.listSubscriptions(tenant, feed)).map((s) => s.name) : [];
    const tier = record?.tier === undefined ? undefined : await policy.findTier(record.tier);
    const delivery = tier?.delivery && { ...tier.delivery[ANY_FEED], ...tier.delivery[feed] };
    res.set('Cache-Control', 'no-store').json(shapeResponse(SubscriptionNames, { subscriptions: names, ...(delivery && Object.keys(delivery).length > 0 && { delivery }) }));
  });
  return router;
}
