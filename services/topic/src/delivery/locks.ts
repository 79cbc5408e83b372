import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { holdDrain, OAuthError, TemporarilyUnavailable, type Logger } from '@keyway/kit';
import type { Delivery } from '@keyway/broker';
import type { TopicMetrics } from '../metrics.ts';
import { RETRY_AFTER_SEC } from './broker-errors.ts';

/** Azure Service Bus's MessageLockLost, as an HTTP answer: the lock token no longer settles anything. */
export class LockLost extends OAuthError {
  constructor(detail: string) {
    super(410, 'lock_lost', 'the message lock is lost: it expired, the message was already settled, or the lock never existed', detail);
  }
}

/**
 * A lock token is a GUID, as Azure Service Bus hands out, whose first 48 bits (`xxxxxxxx-xxxx`) are the
 * id of the instance holding the delivery (instances.ts) and whose other 74 bits are random: any
 * instance can tell where to send a settle, and the token is still unguessable (a settle also needs
 * a listen key for the topic and the message id).
 */
const newToken = (instance: string): string => `${instance.slice(0, 8)}-${instance.slice(8, 12)}${randomUUID().slice(13)}`;

/** the id of the instance a lock token names */
export const instanceOf = (token: string): string => token.slice(0, 13).replace('-', '').toLowerCase();

/** What a lock token is valid for: a lock only settles the message it was handed out with. */
export interface LockScope {
  tenant: string;
  topic: string;
  subscription: string;
  /** received from the subscription's dead-letter queue ($deadletterqueue) */
  deadLetter: boolean;
  messageId: string;
}

interface Lock extends LockScope {
  token: string;
  lockedUntil: number;
  delivery: Delivery;
  timer?: NodeJS.Timeout;
  /** told once when the lock ends, however it ends (the drain hold and a stream's credit end through it) */
  onEnd: (token: string) => void;
}

/**
 * The in-process peek-lock table. It never weakens at-least-once: the broker keeps every locked
 * delivery unacked, so the message returns to its queue when the lock expires (we nack it), when
 * it is abandoned, when this process closes (we release all), or when it dies (the channel closes).
 */
export function lockTable(options: {
  instance: string;
  lockDurationMs: number;
  /** MAX_DELIVERIES, the broker's: a return of the delivery numbered this is a dead-lettering, counted as such */
  maxDeliveries: number;
  metrics: TopicMetrics;
  now: () => number;
  logger: Logger;
}) {
  const { instance, lockDurationMs, maxDeliveries, metrics, now, logger } = options;
  const locks = new Map<string, Lock>();
  let closed = false;

  /**
   * Returns a delivery that never reached a client, or that this instance gives back while closing,
   * to its queue uncounted (release()), as a crashed instance's would be: restarts must not spend
   * deliveries (issue 12).
   */
  const release = async (delivery: Delivery, reason: string): Promise<void> => {
    try {
      await delivery.release();
    } catch (err) {
      // the broker requeues an unacked message whose channel went away, so nothing is lost
      logger.warn('lock.release_failed', { reason, messageId: delivery.messageId, err });
    }
  };

  /** the broker dead-letters a handed-out delivery returned for the maxDeliveries-th time (Delivery.nack) */
  const countReturn = (lock: Lock): void => {
    if (!lock.deadLetter && lock.delivery.deliveryCount >= maxDeliveries) metrics.deadLettered(lock.tenant, lock.topic, 'max_deliveries');
  };

  /** Returns a delivery handed to a client to its queue, counting a delivery (nack(true)). */
  const requeue = async (lock: Lock, reason: string): Promise<void> => {
    try {
      await lock.delivery.nack(true);
    } catch (err) {
      // the broker requeues an unacked message whose channel went away, so nothing is lost
      logger.warn('lock.release_failed', { reason, messageId: lock.messageId, err });
      return;
    }
    countReturn(lock);
  };

  /** a lock that ran out unsettled: the batch goes back to its queue (dead-lettered at its MAX_DELIVERIES-th delivery) */
  const expire = (lock: Lock): void => {
    end(lock);
    metrics.lockExpired(lock.tenant, lock.topic, lock.deadLetter);
    void requeue(lock, 'expired');
  };

  /** removes a lock from the table; every way a lock ends goes through here */
  const end = (lock: Lock): void => {
    locks.delete(lock.token);
    clearTimeout(lock.timer);
    lock.onEnd(lock.token);
  };

  const arm = (lock: Lock): void => {
    clearTimeout(lock.timer);
    lock.timer = setTimeout(
      () => {
        if (locks.get(lock.token) !== lock) return;
        logger.info('lock.expired', { messageId: lock.messageId, subscription: lock.subscription, deadLetter: lock.deadLetter });
        expire(lock);
      },
      Math.max(0, lock.lockedUntil - now()),
    );
    lock.timer.unref();
  };

  /** the live lock for this token and scope, or LockLost; an unknown token and a foreign one look alike */
  const find = (token: string, scope: LockScope): Lock => {
    const lock = locks.get(token.toLowerCase());
    if (!lock || lock.tenant !== scope.tenant || lock.topic !== scope.topic || lock.subscription !== scope.subscription || lock.deadLetter !== scope.deadLetter || lock.messageId !== scope.messageId) {
      throw new LockLost('no such lock for this message');
    }
    if (lock.lockedUntil <= now()) {
      // the timer has not run yet (busy event loop); the lock is over all the same
      expire(lock);
      throw new LockLost('the lock expired');
    }
    return lock;
  };

  const take = (token: string, scope: LockScope): Lock => {
    const lock = find(token, scope);
    end(lock);
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
    /** returns a delivery that was never locked (its receiver went away) to its queue, uncounted */
    release,

    /**
     * Locks a delivery handed out in answer to `req`. Until the lock ends (settled, expired, unlocked
     * or closed: `onEnd` is then called) a draining listener keeps serving, within its bound, so the
     * client can settle it here. Once the table is closed: 503, and the delivery has been returned.
     */
    async lock(req: IncomingMessage, scope: LockScope, delivery: Delivery, onEnd?: (token: string) => void): Promise<{ token: string; lockedUntil: number }> {
      if (closed) {
        await release(delivery, 'closed');
        throw new TemporarilyUnavailable('the service is shutting down', 'lock table closed', { 'Retry-After': String(RETRY_AFTER_SEC) });
      }
      const settled = holdDrain(req);
      const ended = (token: string): void => {
        settled();
        onEnd?.(token);
      };
      const lock: Lock = { ...scope, token: newToken(instance), lockedUntil: now() + lockDurationMs, delivery, onEnd: ended };
      locks.set(lock.token, lock);
      arm(lock);
      return { token: lock.token, lockedUntil: lock.lockedUntil };
    },

    /**
     * Returns a locked message to its queue at once, as abandon does (counted); `handedOut: false`
     * when the hand-out ended through no doing of the client's (this instance is shutting down). A lock
     * that already ended is left alone.
     */
    async unlock(token: string, reason: string, handedOut = true): Promise<void> {
      const lock = locks.get(token);
      if (!lock) return;
      end(lock);
      if (!handedOut) return release(lock.delivery, reason);
      metrics.abandoned(lock.tenant, lock.topic, lock.deadLetter);
      await requeue(lock, reason);
    },

    async complete(token: string, scope: LockScope): Promise<void> {
      const lock = take(token, scope);
      await settle(lock, () => lock.delivery.ack());
      metrics.completed(lock.tenant, lock.topic, lock.deadLetter);
    },

    async abandon(token: string, scope: LockScope): Promise<void> {
      const lock = take(token, scope);
      await settle(lock, () => lock.delivery.nack(true));
      metrics.abandoned(lock.tenant, lock.topic, lock.deadLetter);
      countReturn(lock);
    },

    /** moves the locked message to its dead-letter queue with the receiver's reason; a dead letter's lock is not touched (410) */
    async deadLetter(token: string, scope: LockScope, reason: string, description: string): Promise<void> {
      if (scope.deadLetter) throw new LockLost('a dead letter is not dead-lettered again');
      const lock = take(token, scope);
      await settle(lock, () => lock.delivery.deadLetter(reason, description));
      metrics.deadLettered(lock.tenant, lock.topic, 'receiver');
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
      for (const lock of held) end(lock);
      await Promise.all(held.map((lock) => release(lock.delivery, 'closing')));
    },
  };
}
export type LockTable = ReturnType<typeof lockTable>;
