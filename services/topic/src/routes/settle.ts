import { Router, type RequestHandler } from 'express';
import { CompletedLocks, ForwardedSettleAnswer, topicRoutes } from '@keyway/contracts';
import { bindRoute, requireBodyType, shapeResponse, type RouteInputs } from '@keyway/kit';
import type { SasGuard } from '../auth/sas-guard.ts';
import type { LockSettler } from '../delivery/lock-owners.ts';
import { LockLost, type LockScope } from '../delivery/locks.ts';

/**
 * Settling a peek-locked message, on the Azure Service Bus paths (SAS `listen`):
 * DELETE complete, PUT abandon (unlock), POST renew the lock; the same under `$deadletterqueue` for
 * messages received from the dead-letter queue. POST …/{lockToken}/deadletter moves a message of the
 * subscription to its dead-letter queue with the receiver's reason and description. Any instance
 * answers: a lock held by another instance is settled there (lock-owners.ts), through the internal
 * route below. A lock token only settles the message, queue, subscription, topic and tenant it was
 * handed out for; anything else is 410 lock_lost.
 * POST …/messages/complete completes many locks in one request (issue 12), each reported on its own.
 */
export function settleRoutes(deps: { guard: SasGuard; settler: LockSettler; body: RequestHandler; locksBody: RequestHandler }): Router {
  const router = Router();
  for (const [{ complete, abandon, renewLock, completeMany }, deadLetter] of [
    [topicRoutes, false],
    [{ complete: topicRoutes.deadLetterComplete, abandon: topicRoutes.deadLetterAbandon, renewLock: topicRoutes.deadLetterRenewLock, completeMany: topicRoutes.deadLetterCompleteMany }, true],
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

    // Each lock as a single complete: what fails one entry is reported in it, and logged as the
    // single complete's refusal would be; the request fails only for what fails before a lock is touched.
    bindRoute(router, completeMany, deps.guard('listen'), requireBodyType(completeMany), deps.locksBody, async (req, res, input) => {
      const { tenant, topic, subscription } = input.params();
      const { locks } = input.body();
      const outcomes = await deps.settler.completeMany(locks.map(({ message_id, lock_token }) => ({ token: lock_token, scope: { tenant, topic, subscription, deadLetter, messageId: message_id } })));
      const results = locks.map(({ message_id, lock_token }, i) => {
        const outcome = outcomes[i];
        if (outcome?.completed) {
          req.log.debug('lock.completed', { tenant, topic, subscription, deadLetter, messageId: message_id });
          return { message_id, lock_token, status: 'completed' as const };
        }
        req.log.info('lock.lost', { tenant, topic, subscription, deadLetter, messageId: message_id, detail: outcome?.detail });
        return { message_id, lock_token, status: 'lock_lost' as const };
      });
      res.json(shapeResponse(CompletedLocks, { results }));
    });
  }

  // Azure's DeadLetter settle, on the subscription's locks only (a dead letter is not dead-lettered again)
  bindRoute(router, topicRoutes.deadLetterMessage, deps.guard('listen'), requireBodyType(topicRoutes.deadLetterMessage), deps.body, async (req, res, input) => {
    const { tenant, topic, subscription, id, lockToken } = input.params();
    const why = input.body();
    await deps.settler.settle('deadletter', lockToken, { tenant, topic, subscription, deadLetter: false, messageId: id }, why);
    req.log.info('lock.dead_lettered', { tenant, topic, subscription, messageId: id, reason: why.reason });
    res.json({ message_id: id, status: 'deadlettered' });
  });

  // mTLS, topic certificate only (the route declares its callers); the SAS key was checked by the instance passing it on
  bindRoute(router, topicRoutes.settleForwarded, requireBodyType(topicRoutes.settleForwarded), deps.body, async (_req, res, input) => {
    const { lockToken } = input.params();
    const { action, reason, description, ...scope } = input.body();
    const lockedUntil = await deps.settler.settleHere(action, lockToken, scope, { reason, description });
    res.json(shapeResponse(ForwardedSettleAnswer, lockedUntil === undefined ? {} : { locked_until: new Date(lockedUntil).toISOString() }));
  });
  return router;
}
