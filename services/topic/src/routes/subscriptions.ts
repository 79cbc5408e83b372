import { Router, type RequestHandler } from 'express';
import { topicRoutes } from '@keyway/contracts';
import { bindRoute, requireBodyTypeIfAny } from '@keyway/kit';
import { brokerCall } from '../delivery/broker-errors.ts';
import type { Broker } from '@keyway/broker';
import type { ReplayJobs } from '../delivery/replays.ts';
import type { SubscriptionRegistry } from '../delivery/subscriptions.ts';

/**
 * PUT /internal/v1/tenants/{tenant}/topics/{topic}/subscriptions/{subscription} (mTLS, entitlement
 * only): the entitlement service has a subscription declared as it lists it, before it answers the
 * operator, so the subscription holds every batch published from its creation on (issue 12). 404 when
 * the inventory does not list it, 503 when the broker cannot declare it. With `start_at` (issue 16: a
 * new subscription from a point in time), a replay from then is started too before the answer.
 */
export function subscriptionRoutes(deps: { broker: Broker; subscriptions: SubscriptionRegistry; replays: ReplayJobs; body: RequestHandler }): Router {
  const router = Router();
  bindRoute(router, topicRoutes.declareSubscription, requireBodyTypeIfAny(topicRoutes.declareSubscription), deps.body, async (req, res, input) => {
    const { tenant, topic, subscription } = input.params();
    const startAt = input.body()?.start_at;
    // a time in the future is 400 before anything is declared
    if (startAt !== undefined) deps.replays.check({ from_time: startAt });
    const ref = { tenant, topic };
    await brokerCall(() => deps.subscriptions.declare(ref, subscription));
    if (startAt !== undefined) {
      const replay = await deps.replays.start(ref, subscription, { from_time: startAt });
      req.log.info('replay.requested', { tenant, topic, subscription, replayId: replay.replay_id, from_time: startAt, by: 'entitlement' });
    }
    res.status(204).end();
  });

  // DELETE /internal/v1/tenants/{tenant}/topics/{topic}/stream (mTLS, entitlement only): the feed was removed from the tenant
  bindRoute(router, topicRoutes.deleteStream, async (req, res, input) => {
    const topic = input.params();
    await brokerCall(() => deps.broker.deleteStream(topic));
    deps.subscriptions.forget(topic);
    req.log.info('stream.deleted', { ...topic, by: 'entitlement' });
    res.status(204).end();
  });
  return router;
}
