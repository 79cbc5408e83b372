import { randomUUID } from 'node:crypto';
import { OAuthError, type Logger } from '@keyway/kit';
import type { Delivery } from '@keyway/broker';

/** Azure Service Bus's MessageLockLost, as an HTTP answer: the lock token no longer settles anything. */
export class LockLost extends OAuthError {
  constructor(detail: string) {
    super(410, 'lock_lost', 'the message lock is lost: it expired, the message was already settled, or the lock never existed', detail);
  }
}

/** What a lock token is valid for: a lock only settles the message it was handed out with. */
export interface LockScope {
  tenant: string;
  topic: string;
  subscription: string;
  messageId: string;
}

interface Lock extends LockScope {
  token: string;
  lockedUntil: number;
  delivery: Delivery;
  timer?: NodeJS.Timeout;
}

/**
 * The in-process peek-lock table. It never weakens at-least-once: the broker keeps every locked
 * delivery unacked, so the message returns to its queue when the lock expires (we nack it), when
 * it is abandoned, when this process closes (we nack all), or when it dies (the channel closes).
 */
export function lockTable(options: { lockDurationMs: number; now: () => number; logger: Logger }) {
  const { lockDurationMs, now, logger } = options;
  const locks = new Map<string, Lock>();
  let closed = false;

  const requeue = async (delivery: Delivery, reason: string): Promise<void> => {
    try {
      await delivery.nack(true);
    } catch (err) {
      // the broker requeues an unacked message whose channel went away, so nothing is lost
      logger.warn('lock.release_failed', { reason, messageId: delivery.messageId, err });
    }
  };

  const arm = (lock: Lock): void => {
    clearTimeout(lock.timer);
    lock.timer = setTimeout(() => {
      if (locks.get(lock.token) !== lock) return;
      locks.delete(lock.token);
      logger.info('lock.expired', { messageId: lock.messageId, subscription: lock.subscription });
      void requeue(lock.delivery, 'expired');
    }, Math.max(0, lock.lockedUntil - now()));
    lock.timer.unref();
  };

  /** the live lock for this token and scope, or LockLost; an unknown token and a foreign one look alike */
  const find = (token: string, scope: LockScope): Lock => {
    const lock = locks.get(token);
    if (
      !lock ||
      lock.tenant !== scope.tenant ||
      lock.topic !== scope.topic ||
      lock.subscription !== scope.subscription ||
      lock.messageId !== scope.messageId
    ) {
      throw new LockLost('no such lock for this message');
    }
    if (lock.lockedUntil <= now()) {
      // the timer has not run yet (busy event loop); the lock is over all the same
      locks.delete(token);
      clearTimeout(lock.timer);
      void requeue(lock.delivery, 'expired');
      throw new LockLost('the lock expired');
    }
    return lock;
  };

  const take = (token: string, scope: LockScope): Lock => {
    const lock = find(token, scope);
    locks.delete(token);
    clearTimeout(lock.timer);
    return lock;
  };

  /** A settle the broker refused: the channel is gone and RabbitMQ has requeued the message. */
  const settle = async (lock: Lock, action: () => Promise<void>): Promise<void> => {
    try {
      await action();
    } catch (err) {
      logger.warn('lock.settle_failed', { messageId: lock.messageId, err });
      throw new LockLost('the broker no longer holds the delivery; it will be delivered again');
    }
  };

  return {
    /** returns a delivery that was never locked (its receiver went away) to its queue */
    release: requeue,

    /** locks a delivery; undefined once the table is closed (the delivery has been returned then) */
    async lock(scope: LockScope, delivery: Delivery): Promise<{ token: string; lockedUntil: number } | undefined> {
      if (closed) {
        await requeue(delivery, 'closed');
        return undefined;
      }
      const lock: Lock = { ...scope, token: randomUUID(), lockedUntil: now() + lockDurationMs, delivery };
      locks.set(lock.token, lock);
      arm(lock);
      return { token: lock.token, lockedUntil: lock.lockedUntil };
    },

    async complete(token: string, scope: LockScope): Promise<void> {
      const lock = take(token, scope);
      await settle(lock, () => lock.delivery.ack());
    },

    async abandon(token: string, scope: LockScope): Promise<void> {
      const lock = take(token, scope);
      await settle(lock, () => lock.delivery.nack(true));
    },

    renew(token: string, scope: LockScope): number {
      const lock = find(token, scope);
      lock.lockedUntil = now() + lockDurationMs;
      arm(lock);
      return lock.lockedUntil;
    },

    /** returns every locked delivery to its queue and refuses new locks */
    async close(): Promise<void> {
      closed = true;
      const held = [...locks.values()];
      locks.clear();
      for (const lock of held) clearTimeout(lock.timer);
      await Promise.all(held.map((lock) => requeue(lock.delivery, 'closing')));
    },
  };
}
export type LockTable = ReturnType<typeof lockTable>;
