import { Router } from 'express';
import { topicRoutes } from '@keyway/contracts';
import { bindRoute, type RouteInputs } from '@keyway/kit';
import type { SasGuard } from '../auth/sas-guard.ts';
import type { LockScope, LockTable } from '../delivery/locks.ts';

/**
 * Settling a peek-locked message, on the Azure Service Bus paths (SAS `listen`):
 * DELETE complete, PUT abandon (unlock), POST renew the lock; the same under `$deadletterqueue` for
 * messages received from the dead-letter queue. A lock token only settles the message, queue,
 * subscription, topic and tenant it was handed out for; anything else is 410 lock_lost.
 */
export function settleRoutes(deps: { guard: SasGuard; locks: LockTable }): Router {
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
      await deps.locks.complete(token, scope);
      res.json({ message_id: scope.messageId, status: 'completed' });
    });

    bindRoute(router, abandon, deps.guard('listen'), async (_req, res, input) => {
      const { token, scope } = lockOf(input);
      await deps.locks.abandon(token, scope);
      res.json({ message_id: scope.messageId, status: 'abandoned' });
    });

    bindRoute(router, renewLock, deps.guard('listen'), (_req, res, input) => {
      const { token, scope } = lockOf(input);
      const lockedUntil = deps.locks.renew(token, scope);
      res.json({ message_id: scope.messageId, locked_until: new Date(lockedUntil).toISOString() });
    });
  }
  return router;
}
