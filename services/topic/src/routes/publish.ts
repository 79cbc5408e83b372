import { Router, type RequestHandler } from 'express';
import { bindRoute, parseInput, requireBodyType, shapeResponse, type RouteHandler } from '@keyway/kit';
import { PublishResponse, topicRoutes } from '@keyway/contracts';
import type { Broker, TopicRef } from '@keyway/broker';
import type { SasGuard } from '../auth/sas-guard.ts';
import { CHECKED_BATCH, readBatch, storedBatch } from '../batches/validate.ts';
import { brokerCall } from '../delivery/broker-errors.ts';
import { DEFAULT_SUBSCRIPTION, type SubscriptionRegistry } from '../delivery/subscriptions.ts';
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
 * unauthenticated upload is refused unread.
 */
export function publishRoutes(deps: {
  guard: SasGuard;
  broker: Broker;
  subscriptions: SubscriptionRegistry;
  quotas: PublishQuotas;
  body: RequestHandler;
  metrics: TopicMetrics;
  policies: FeedPolicies;
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
    await deps.quotas.depth(topic);
    const stored = storedBatch(batch);
    await brokerCall(() =>
      deps.subscriptions.withSubscription(
        topic,
        DEFAULT_SUBSCRIPTION,
        () => deps.broker.publish(topic, stored, { messageId: batch.id, contentType: CHECKED_BATCH }),
        // publishing does not keep an unread `default` alive: it expires, and is declared again here once gone
        { renew: false },
      ),
    );
    deps.metrics.published(topic.tenant, topic.topic, stored.length);
    req.log.info('batch.published', { tenant: topic.tenant, topic: topic.topic, batchId: batch.id, records: batch.records.length });
    res.status(201).json(shapeResponse(PublishResponse, { id: batch.id, tenant: topic.tenant, topic: topic.topic }));
  };
  bindRoute(router, topicRoutes.publish, deps.guard('send'), requireBodyType(topicRoutes.publish), countRate(topicRoutes.publish), deps.body, publish);
  bindRoute(router, topicRoutes.publishInternal, requireBodyType(topicRoutes.publishInternal), countRate(topicRoutes.publishInternal), deps.body, publish);
  return router;
}
