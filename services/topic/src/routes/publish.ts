import { Router } from 'express';
import { parseInput, requireContentType, shapeResponse } from '@keyway/kit';
import { PublishResponse } from '@keyway/contracts';
import type { Broker } from '@keyway/broker';
import { TopicPath, type sasGuard } from '../auth/sas-guard.ts';
import { readBatch } from '../batches/validate.ts';
import { brokerCall } from '../delivery/broker-errors.ts';
import { DEFAULT_SUBSCRIPTION, type SubscriptionRegistry } from '../delivery/subscriptions.ts';
import { TOPIC } from './paths.ts';

/**
 * POST /tenants/{tenant}/topics/{topic}/messages (SAS `send`): 201 only once the broker confirmed
 * the batch. Every check runs before the broker sees it, so a refused batch never reaches a
 * subscriber. The `default` subscription always exists, so a batch is never published to nobody.
 */
export function publishRoutes(deps: { guard: ReturnType<typeof sasGuard>; broker: Broker; subscriptions: SubscriptionRegistry }): Router {
  const router = Router();
  router.post(`${TOPIC}/messages`, deps.guard('send'), requireContentType('application/json'), async (req, res) => {
    const topic = parseInput(TopicPath, req.params, 'path');
    const batch = readBatch(req.body, topic);
    await brokerCall(() =>
      deps.subscriptions.withSubscription(topic, DEFAULT_SUBSCRIPTION, () =>
        deps.broker.publish(topic, Buffer.from(JSON.stringify(batch)), { messageId: batch.id, contentType: 'application/json' }),
      ),
    );
    req.log.info('batch.published', { tenant: topic.tenant, topic: topic.topic, batchId: batch.id, records: batch.records.length });
    res.status(201).json(shapeResponse(PublishResponse, { id: batch.id, tenant: topic.tenant, topic: topic.topic }));
  });
  return router;
}
