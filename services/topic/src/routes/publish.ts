import { Router, type RequestHandler } from 'express';
import { bindRoute, parseInput, requireBodyType, shapeResponse, type RouteHandler } from '@keyway/kit';
import { PublishResponse, topicRoutes } from '@keyway/contracts';
import type { Broker, TopicRef } from '@keyway/broker';
import type { SasGuard } from '../auth/sas-guard.ts';
import { CHECKED_BATCH, readBatch, storedBatch } from '../batches/validate.ts';
import { brokerCall } from '../delivery/broker-errors.ts';
import { DEFAULT_SUBSCRIPTION, type SubscriptionRegistry } from '../delivery/subscriptions.ts';
import type { DuplicateDetection } from '../delivery/duplicates.ts';
import type { FeedPolicies } from '../delivery/policy.ts';
import type { TopicMetrics } from '../metrics.ts';

export interface PublishQuotas {
  /** 429 when the tenant is over its publish rate, 503 when that cannot be checked */
  rate(tenant: string): Promise<void>;
  /** 429 when a subscription of the topic is full */
  depth(topic: TopicRef): Promise<void>;
}

/**
 * Publishing a batch: POST /tenants/{tenant}/topics/{topic}/messages (SAS `send`), and the same on
 * /internal/v1/… for the audit service (mTLS, INTERNAL_APIS), which publishes the tenants' audit feeds
 * through these checks and quotas rather than around them. Both run one pipeline after their own
 * authentication: 201 only once the broker confirmed the batch. Every check runs before the broker
 * sees it, so a refused batch never reaches a subscriber. The rate is counted before the batch is
 * read, so a flood costs no payload scanning. The `default` subscription always exists, so a batch is
 * never published to nobody. The body is read only once the caller passed (issue 9), so an
 * unauthenticated upload is refused unread. A batch id accepted within the feed's duplicate window
 * is answered 201 `duplicate: true` and not published again (issue 16); the feed's message TTL
 * goes with the batch to the broker.
 */
export function publishRoutes(deps: {
  guard: SasGuard;
  broker: Broker;
  subscriptions: SubscriptionRegistry;
  quotas: PublishQuotas;
  body: RequestHandler;
  metrics: TopicMetrics;
  policies: FeedPolicies;
  duplicates: DuplicateDetection;
}): Router {
  const router = Router();
  // the rate is counted before the body is read, so a flood costs neither reading nor scanning; a path
  // the route refuses (the internal publish names audit feeds only) is not counted
  const countRate =
    (route: typeof topicRoutes.publish | typeof topicRoutes.publishInternal): RequestHandler =>
    async (req, _res, next) => {
      await deps.quotas.rate(parseInput(route.params, req.params, 'path').tenant);
      next();
    };
  // the two routes share the path parameters and the body, so one handler serves both
  const publish: RouteHandler<typeof topicRoutes.publish | typeof topicRoutes.publishInternal> = async (req, res, input) => {
    const topic = input.params();
    const batch = readBatch(req.body, topic);
    const policy = await deps.policies.of(topic);
    const stored = storedBatch(batch);
    // the depth check is part of the claimed publish: a duplicate is answered even while the queues are full
    const outcome = await deps.duplicates.once(topic, batch.id, policy.duplicateWindowSec, async () => {
      await deps.quotas.depth(topic);
      await brokerCall(() =>
        deps.subscriptions.withSubscription(
          topic,
          DEFAULT_SUBSCRIPTION,
          () =>
            // 0: never expires
            deps.broker.publish(topic, stored, { messageId: batch.id, contentType: CHECKED_BATCH, ttlMs: policy.messageTtlSec * 1000 }),
          // publishing does not keep an unread `default` alive: it expires, and is declared again here once gone
          { renew: false },
        ),
      );
    });
    const answer = { id: batch.id, tenant: topic.tenant, topic: topic.topic };
    if (outcome === 'duplicate') {
      req.log.info('batch.duplicate', { tenant: topic.tenant, topic: topic.topic, batchId: batch.id });
      res.status(201).json(shapeResponse(PublishResponse, { ...answer, duplicate: true }));
      return;
    }
    deps.metrics.published(topic.tenant, topic.topic, stored.length);
    req.log.info('batch.published', { tenant: topic.tenant, topic: topic.topic, batchId: batch.id, records: batch.records.length });
    res.status(201).json(shapeResponse(PublishResponse, answer));
  };
  bindRoute(router, topicRoutes.publish, deps.guard('send'), requireBodyType(topicRoutes.publish), countRate(topicRoutes.publish), deps.body, publish);
  bindRoute(router, topicRoutes.publishInternal, requireBodyType(topicRoutes.publishInternal), countRate(topicRoutes.publishInternal), deps.body, publish);
  return router;
}
