import { Router, type RequestHandler } from 'express';
import { topicRoutes } from '@keyway/contracts';
import { bindRoute, OAuthError, requireBodyType } from '@keyway/kit';
import type { SasGuard } from '../auth/sas-guard.ts';
import { brokerCall } from '../delivery/broker-errors.ts';
import type { ReplayJobs } from '../delivery/replays.ts';
import type { SubscriptionRegistry } from '../delivery/subscriptions.ts';
import type { TopicTrail } from '../audit.ts';

class ReplayNotFound extends OAuthError {
  constructor() {
    super(404, 'replay_not_found', 'no such replay of this subscription (a replay’s status is kept for 7 days)');
  }
}

/**
 * POST …/subscriptions/{sub}/replays (SAS `listen`, a subscription that can be received from):
 * starts copying the topic's retained batches into the subscription, 202 with its status and its
 * Location; GET …/replays/{id} answers that status.
 */
export function replayRoutes(deps: { guard: SasGuard; subscriptions: SubscriptionRegistry; replays: ReplayJobs; trail: TopicTrail; body: RequestHandler }): Router {
  const router = Router();
  bindRoute(router, topicRoutes.replay, deps.guard('listen'), requireBodyType(topicRoutes.replay), deps.body, async (req, res, input) => {
    const { tenant, topic, subscription } = input.params();
    const request = input.body();
    deps.replays.check(request);
    const ref = { tenant, topic };
    await brokerCall(() => deps.subscriptions.ensure(ref, subscription));
    // recorded as replay.requested (who: the SAS key's id) once started; not started when the trail takes no writes
    const status = await deps.trail.sasAction(req, 'replay.requested', { tenant, topic, subscription }, async (note) => {
      const started = await deps.replays.start(ref, subscription, request);
      note({ replay: started.replay_id, ...(request.from_time !== undefined ? { from_time: request.from_time } : { from_offset: String(request.from_offset) }) });
      return started;
    });
    req.log.info('replay.requested', { tenant, topic, subscription, replayId: status.replay_id, ...request });
    res.status(202).location(`${req.baseUrl}${req.path}/${status.replay_id}`).json(status);
  });

  bindRoute(router, topicRoutes.replayStatus, deps.guard('listen'), async (_req, res, input) => {
    const { tenant, topic, subscription, replayId } = input.params();
    const status = await deps.replays.status({ tenant, topic }, subscription, replayId);
    if (!status) throw new ReplayNotFound();
    res.json(status);
  });

  // mTLS, entitlement certificate only (the routes declare their callers): an operator's replay, recorded
  // in the entitlement service's trail under the operator's name
  bindRoute(router, topicRoutes.replayInternal, requireBodyType(topicRoutes.replayInternal), deps.body, async (req, res, input) => {
    const { tenant, topic, subscription } = input.params();
    const request = input.body();
    deps.replays.check(request);
    const ref = { tenant, topic };
    await brokerCall(() => deps.subscriptions.ensure(ref, subscription));
    const status = await deps.replays.start(ref, subscription, request);
    req.log.info('replay.requested', { tenant, topic, subscription, replayId: status.replay_id, ...request, by: 'entitlement' });
    res.status(202).json(status);
  });

  bindRoute(router, topicRoutes.replayStatusInternal, async (_req, res, input) => {
    const { tenant, topic, subscription, replayId } = input.params();
    const status = await deps.replays.status({ tenant, topic }, subscription, replayId);
    if (!status) throw new ReplayNotFound();
    res.json(status);
  });

  return router;
}
