import { Router, type Request } from 'express';
import { parseInput } from '@keyway/kit';
import type { SasGuard } from '../auth/sas-guard.ts';
import type { LockScope, LockTable } from '../delivery/locks.ts';
import { DEAD_LETTER_MESSAGE, MESSAGE, MessagePath } from './paths.ts';

/**
 * Settling a peek-locked message, on the Azure Service Bus paths (SAS `listen`):
 * DELETE complete, PUT abandon (unlock), POST renew the lock; the same under `$deadletterqueue` for
 * messages received from the dead-letter queue. A lock token only settles the message, queue,
 * subscription, topic and tenant it was handed out for; anything else is 410 lock_lost.
 */
export function settleRoutes(deps: { guard: SasGuard; locks: LockTable }): Router {
  const router = Router();
  for (const [path, deadLetter] of [
    [MESSAGE, false],
    [DEAD_LETTER_MESSAGE, true],
  ] as const) {
    const lockOf = (req: Request): { token: string; scope: LockScope } => {
      const { tenant, topic, subscription, id, lockToken } = parseInput(MessagePath, req.params, 'path');
      return { token: lockToken, scope: { tenant, topic, subscription, deadLetter, messageId: id } };
    };

    router.delete(path, deps.guard('listen'), async (req, res) => {
      const { token, scope } = lockOf(req);
      await deps.locks.complete(token, scope);
      res.json({ message_id: scope.messageId, status: 'completed' });
    });

    router.put(path, deps.guard('listen'), async (req, res) => {
      const { token, scope } = lockOf(req);
      await deps.locks.abandon(token, scope);
      res.json({ message_id: scope.messageId, status: 'abandoned' });
    });

    router.post(path, deps.guard('listen'), (req, res) => {
      const { token, scope } = lockOf(req);
      const lockedUntil = deps.locks.renew(token, scope);
      res.json({ message_id: scope.messageId, locked_until: new Date(lockedUntil).toISOString() });
    });
  }
  return router;
}
