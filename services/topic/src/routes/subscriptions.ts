import { Router } from 'express';
import { topicRoutes } from '@keyway/contracts';
import { bindRoute } from '@keyway/kit';
import { brokerCall } from '../delivery/broker-errors.ts';
import type { SubscriptionRegistry } from '../delivery/subscriptions.ts';

/**
 * PUT /internal/v1/tenants/{tenant}/topics/{topic}/subscriptions/{subscription} (mTLS, entitlement
 * only): the entitlement service has a subscription declared as it lists it, before it answers the
 * operator, so the subscription holds every batch published from its creation on (issue 12). 404 when
 * the inventory does not list it, 503 when the broker cannot declare it.
 */
export function subscriptionRoutes(deps: { subscriptions: SubscriptionRegistry }): Router {
  const router = Router();
  bindRoute(router, topicRoutes.declareSubscription, async (_req, res, input) => {
    const { tenant, topic, subscription } = input.params();
    await brokerCall(() => deps.subscriptions.declare({ tenant, topic }, subscription));
    res.status(204).end();
  });
  return router;
}
