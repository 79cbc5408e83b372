import { Router } from 'express';
import { Subscription, SubscriptionList, Tenant, TenantFeedList } from '@keyway/contracts';
import { parseInput, shapeResponse } from '@keyway/kit';
import type { Admin } from '../../admin/operations.ts';
import type { PolicyRepository } from '../../policy/repository.ts';
import { FeedPath, SubscriptionPath, TenantPath } from './paths.ts';

/**
 * /v1/tenants/:tenant/feeds…: the tenant's feeds (grant, remove: feed.removed revokes what used it)
 * and each feed's named subscriptions. Subscriptions are the operator's inventory: the topic service
 * receives only from listed ones (and `default`), declaring a queue when an importer first uses it;
 * dropping a subscription, or its feed, deletes its queues.
 */
export function feedRoutes(policy: PolicyRepository, admin: Admin): Router {
  const router = Router();

  router.get('/v1/tenants/:tenant/feeds', async (req, res) => {
    const { tenant } = parseInput(TenantPath, req.params, 'path');
    const { feeds } = await policy.getTenant(tenant);
    const listed = await Promise.all(
      feeds.map(async (name) => ({ name, subscriptions: (await policy.listSubscriptions(tenant, name)).map((s) => s.name) })),
    );
    res.json(shapeResponse(TenantFeedList, { tenant, feeds: listed }));
  });

  router.put('/v1/tenants/:tenant/feeds/:feed', async (req, res) => {
    const { tenant, feed } = parseInput(FeedPath, req.params, 'path');
    res.json(shapeResponse(Tenant, await admin(req).grantFeed(tenant, feed)));
  });

  router.delete('/v1/tenants/:tenant/feeds/:feed', async (req, res) => {
    const { tenant, feed } = parseInput(FeedPath, req.params, 'path');
    await admin(req).removeFeed(tenant, feed);
    res.status(204).end();
  });

  router.get('/v1/tenants/:tenant/feeds/:feed/subscriptions', async (req, res) => {
    const { tenant, feed } = parseInput(FeedPath, req.params, 'path');
    await policy.getTenant(tenant);
    res.json(shapeResponse(SubscriptionList, { subscriptions: await policy.listSubscriptions(tenant, feed) }));
  });

  router.post('/v1/tenants/:tenant/feeds/:feed/subscriptions/:name', async (req, res) => {
    const { tenant, feed, name } = parseInput(SubscriptionPath, req.params, 'path');
    const { subscription, created } = await admin(req).addSubscription(tenant, feed, name);
    res.status(created ? 201 : 200).json(shapeResponse(Subscription, subscription));
  });

  router.delete('/v1/tenants/:tenant/feeds/:feed/subscriptions/:name', async (req, res) => {
    const { tenant, feed, name } = parseInput(SubscriptionPath, req.params, 'path');
    await admin(req).removeSubscription(tenant, feed, name);
    res.status(204).end();
  });
  return router;
}
