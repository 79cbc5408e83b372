import { Router, type RequestHandler } from 'express';
import { ResubmittedDeadLetters, topicRoutes } from '@keyway/contracts';
import { bindRoute, requireBodyType, shapeResponse } from '@keyway/kit';
import type { Broker } from '@keyway/broker';
import type { SasGuard } from '../auth/sas-guard.ts';
import type { TopicTrail } from '../audit.ts';
import { brokerCall } from '../delivery/broker-errors.ts';
import type { SubscriptionRegistry } from '../delivery/subscriptions.ts';

/**
 * Resubmitting dead letters: up to `max` of a subscription's dead letters, oldest first, move back to
 * the subscription, to be delivered from delivery count 1 without their reason. The tenant asks with
 * a listen key (POST …/$deadletterqueue/resubmit), recorded in this service's trail with the key's
 * id; an operator asks at the entitlement service, which passes it on to the internal route over mTLS
 * and records it in its own trail with the operator's name. Only `default` and listed subscriptions
 * (404 otherwise), as for a receive.
 */
export function deadLetterRoutes(deps: { guard: SasGuard; broker: Broker; subscriptions: SubscriptionRegistry; trail: TopicTrail; body: RequestHandler }): Router {
  const router = Router();
  const resubmit = ({ tenant, topic, subscription }: { tenant: string; topic: string; subscription: string }, max: number): Promise<number> =>
    brokerCall(() => deps.subscriptions.withSubscription({ tenant, topic }, subscription, () => deps.broker.resubmitDeadLetters({ tenant, topic }, subscription, { max })));

  bindRoute(router, topicRoutes.resubmitDeadLetters, deps.guard('listen'), requireBodyType(topicRoutes.resubmitDeadLetters), deps.body, async (req, res, input) => {
    const path = input.params();
    const { max } = input.body();
    const resubmitted = await deps.trail.sasAction(req, 'deadletters.resubmitted', path, async (note) => {
      const count = await resubmit(path, max);
      note({ count: String(count), max: String(max) });
      return count;
    });
    req.log.info('deadletters.resubmitted', { ...path, count: resubmitted });
    res.json(shapeResponse(ResubmittedDeadLetters, { resubmitted }));
  });

  // mTLS, entitlement certificate only (the route declares its callers); the entitlement service records it
  bindRoute(router, topicRoutes.resubmitDeadLettersInternal, requireBodyType(topicRoutes.resubmitDeadLettersInternal), deps.body, async (req, res, input) => {
    const path = input.params();
    const { max } = input.body();
    const resubmitted = await resubmit(path, max);
    req.log.info('deadletters.resubmitted', { ...path, count: resubmitted, by: 'entitlement' });
    res.json(shapeResponse(ResubmittedDeadLetters, { resubmitted }));
  });
  return router;
}
