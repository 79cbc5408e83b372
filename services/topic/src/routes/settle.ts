import { Router, type RequestHandler } from 'express';
import { ForwardedSettleAnswer, topicRoutes } from '@keyway/contracts';
import { bindRoute, requireBodyType, shapeResponse, type RouteInputs } from '@keyway/kit';
import type { SasGuard } from '../auth/sas-guard.ts';
import type { LockSettler } from '../delivery/lock-owners.ts';
import { LockLost, type LockScope } from '../delivery/locks.ts';

/**
 * Settling a peek-locked message, on the Azure Service Bus paths (SAS `listen`):
 * DELETE complete, PUT abandon (unlock), POST renew the lock; the same under `$deadletterqueue` for
 * messages received from the dead-letter queue. Any instance answers: a lock held by another instance
 * is settled there (lock-owners.ts), through the internal route below. A lock token only settles the
 * message, queue, subscription, topic and tenant it was handed out for; anything else is 410 lock_lost.
 */
export function settleRoutes(deps: { guard: SasGuard; settler: LockSettler; body: RequestHandler }): Router {
  const router = Router();
  for (const [{ complete, abandon, renewLock }, deadLetter] of [
    [topicRoutes, false],
    [{ complete: topicRoutes.deadLetterComplete, abandon: topicRoutes.deadLetterAbandon, renewLock: topicRoutes.deadLetterRenewLock }, true],
  ] as const) {
    const lockOf = (input: Pick<RouteInputs<typeof complete>, 'params'>): { token: string; scope: LockScope } => {
      const { tenant, topic, subscription, id, lockToken } = input.params();
      return { token: lockToken, scope: { tenant, topic, subscription, deadLetter, messageId: id } };
    };

    bindRoute(router, complete, deps.guard('listen'), async (_req, res, input) => {
      const { token, scope } = lockOf(input);
      await deps.settler.settle('complete', token, scope);
      res.json({ message_id: scope.messageId, status: 'completed' });
    });

    bindRoute(router, abandon, deps.guard('listen'), async (_req, res, input) => {
      const { token, scope } = lockOf(input);
      await deps.settler.settle('abandon', token, scope);
      res.json({ message_id: scope.messageId, status: 'abandoned' });
    });

    bindRoute(router, renewLock, deps.guard('listen'), async (_req, res, input) => {
      const { token, scope } = lockOf(input);
      const lockedUntil = await deps.settler.settle('renew', token, scope);
      if (lockedUntil === undefined) throw new LockLost('the holding instance did not renew the lock');
      res.json({ message_id: scope.messageId, locked_until: new Date(lockedUntil).toISOString() });
    });
  }

  // mTLS, topic certificate only (the route declares its callers); the SAS key was checked by the instance passing it on
  bindRoute(router, topicRoutes.settleForwarded, requireBodyType(topicRoutes.settleForwarded), deps.body, async (_req, res, input) => {
    const { lockToken } = input.params();
    const { action, ...scope } = input.body();
    const lockedUntil = await deps.settler.settleHere(action, lockToken, scope);
    res.json(shapeResponse(ForwardedSettleAnswer, lockedUntil === undefined ? {} : { locked_until: new Date(lockedUntil).toISOString() }));
  });
  return router;
}
