import { Router } from 'express';
import { parseInput, shapeResponse, TemporarilyUnavailable } from '@keyway/kit';
import { ReceivedMessage, ReceiveQuery } from '@keyway/contracts';
import type { Broker } from '@keyway/broker';
import type { sasGuard } from '../auth/sas-guard.ts';
import { parseDelivered } from '../batches/validate.ts';
import { brokerCall, RETRY_AFTER_SEC } from '../delivery/broker-errors.ts';
import type { LockTable } from '../delivery/locks.ts';
import type { SubscriptionRegistry } from '../delivery/subscriptions.ts';
import { SubscriptionPath, SUBSCRIPTION } from './paths.ts';

/**
 * POST /tenants/{tenant}/topics/{topic}/subscriptions/{sub}/messages/head?timeout=N (SAS `listen`):
 * Azure Service Bus peek-lock receive, a long poll of up to N seconds. 201 with the batch and its
 * lock token, or 204 when nothing arrived.
 */
export function receiveRoutes(deps: { guard: ReturnType<typeof sasGuard>; broker: Broker; subscriptions: SubscriptionRegistry; locks: LockTable }): Router {
  const router = Router();
  router.post(`${SUBSCRIPTION}/messages/head`, deps.guard('listen'), async (req, res) => {
    const path = parseInput(SubscriptionPath, req.params, 'path');
    const { timeout } = parseInput(ReceiveQuery, req.query, 'query');
    const topic = { tenant: path.tenant, topic: path.topic };

    // A long poll the client gave up on must not hold a message until its lock expires.
    let clientGone = false;
    res.on('close', () => {
      if (!res.writableFinished) clientGone = true;
    });

    const deadline = Date.now() + timeout * 1000;
    for (;;) {
      const delivery = await brokerCall(() =>
        deps.subscriptions.withSubscription(topic, path.subscription, () =>
          deps.broker.receive(topic, path.subscription, Math.max(0, deadline - Date.now())),
        ),
      );
      if (!delivery) {
        res.status(204).end();
        return;
      }
      if (clientGone) {
        await deps.locks.release(delivery, 'receiver gone');
        return;
      }
      const batch = parseDelivered(delivery.body);
      if (!batch) {
        // Not something publish accepted (put on the queue by other means): dead-letter it and keep waiting.
        req.log.warn('delivery.unreadable', { messageId: delivery.messageId, subscription: path.subscription });
        await brokerCall(() => delivery.nack(false));
        continue;
      }
      const lock = await deps.locks.lock({ ...topic, subscription: path.subscription, messageId: delivery.messageId }, delivery);
      if (!lock) throw new TemporarilyUnavailable('the service is shutting down', 'lock table closed', { 'Retry-After': String(RETRY_AFTER_SEC) });
      res.status(201).json(
        shapeResponse(ReceivedMessage, {
          message_id: delivery.messageId,
          lock_token: lock.token,
          locked_until: new Date(lock.lockedUntil).toISOString(),
          delivery_count: delivery.deliveryCount,
          batch,
        }),
      );
      return;
    }
  });
  return router;
}
