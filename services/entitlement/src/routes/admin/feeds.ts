import { Router } from 'express';
import { entitlementRoutes, ReplayStatus, ResubmittedDeadLetters, Subscription, SubscriptionList, Tenant, TenantFeedList } from '@keyway/contracts';
import { bindRoute, requireBodyType, requireBodyTypeIfAny, shapeResponse } from '@keyway/kit';
import type { Admin } from '../../admin/operations.ts';
import type { PolicyRepository } from '../../policy/repository.ts';

/**
 * /v1/tenants/:tenant/feeds…: the tenant's feeds (grant, remove: feed.removed revokes what used it)
 * and each feed's named subscriptions. Subscriptions are the operator's inventory: the topic service
 * receives only from listed ones (and `default`), and declares a subscription's queues when it is
 * listed; dropping a subscription, or its feed, deletes its queues. An operator resubmits a
 * subscription's dead letters and replays a feed into a subscription here (the topic service does
 * it; recorded in this service's trail).
 */
export function feedRoutes(policy: PolicyRepository, admin: Admin): Router {
  const router = Router();

  bindRoute(router, entitlementRoutes.listFeeds, async (_req, res, input) => {
    const { tenant } = input.params();
    const { feeds } = await policy.getTenant(tenant);
    const listed = await Promise.all(feeds.map(async (name) => ({ name, subscriptions: (await policy.listSubscriptions(tenant, name)).map((s) => s.name) })));
    res.json(shapeResponse(TenantFeedList, { tenant, feeds: listed }));
  });

  bindRoute(router, entitlementRoutes.grantFeed, async (req, res, input) => {
    const { tenant, feed } = input.params();
    res.json(shapeResponse(Tenant, await admin(req).grantFeed(tenant, feed)));
  });

  bindRoute(router, entitlementRoutes.removeFeed, async (req, res, input) => {
    const { tenant, feed } = input.params();
    await admin(req).removeFeed(tenant, feed);
    res.status(204).end();
  });

  bindRoute(router, entitlementRoutes.listSubscriptions, async (_req, res, input) => {
    const { tenant, feed } = input.params();
    await policy.getTenant(tenant);
    res.json(shapeResponse(SubscriptionList, { subscriptions: await policy.listSubscriptions(tenant, feed) }));
  });

  bindRoute(router, entitlementRoutes.createSubscription, requireBodyTypeIfAny(entitlementRoutes.createSubscription), async (req, res, input) => {
    const { tenant, feed, name } = input.params();
    const startAt = input.body()?.start_at;
    const { subscription, created } = await admin(req).addSubscription(tenant, feed, name, startAt === undefined ? {} : { startAt });
    res.status(created ? 201 : 200).json(shapeResponse(Subscription, subscription));
  });

  bindRoute(router, entitlementRoutes.resubmitDeadLetters, requireBodyType(entitlementRoutes.resubmitDeadLetters), async (req, res, input) => {
    const { tenant, feed, name } = input.params();
    const { max } = input.body();
    res.json(shapeResponse(ResubmittedDeadLetters, { resubmitted: await admin(req).resubmitDeadLetters(tenant, feed, name, max) }));
  });

  bindRoute(router, entitlementRoutes.replaySubscription, requireBodyType(entitlementRoutes.replaySubscription), async (req, res, input) => {
    const { tenant, feed, name } = input.params();
    res.status(202).json(shapeResponse(ReplayStatus, await admin(req).replay(tenant, feed, name, input.body())));
  });

  bindRoute(router, entitlementRoutes.replayStatus, async (req, res, input) => {
    const { tenant, feed, name, replayId } = input.params();
    res.json(shapeResponse(ReplayStatus, await admin(req).replayStatus(tenant, feed, name, replayId)));
  });

  bindRoute(router, entitlementRoutes.deleteSubscription, async (req, res, input) => {
    const { tenant, feed, name } = input.params();
    await admin(req).removeSubscription(tenant, feed, name);
    res.status(204).end();
  });
  return router;
}
