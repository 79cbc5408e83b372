import type { ErrorRequestHandler, Express } from 'express';
import { createAuditLog, readinessWithTrail, type AuditDb } from '@keyway/audit';
import { topicApi } from '@keyway/contracts';
import { createBaseApp, DPOP_IAT_WINDOW_SEC, dpopGuardOnDemand, finishApp, jsonBody, type Logger } from '@keyway/kit';
import type { Broker } from '@keyway/broker';
import type { Store } from '@keyway/store';
import { topicTrail } from './audit.ts';
import { sasGuard } from './auth/sas-guard.ts';
import { keyStatusCache, type KeyStatusSource } from './auth/revocation.ts';
import { sasSignatureCache, type SasSignatureSource } from './auth/sas-signatures.ts';
import type { TopicConfig } from './config.ts';
import { subscriptionInventory, type SubscriptionSource } from './delivery/inventory.ts';
import { duplicateDetection } from './delivery/duplicates.ts';
import { instanceRegistry } from './delivery/instances.ts';
import { lockSettler, type Peer } from './delivery/lock-owners.ts';
import { lockTable } from './delivery/locks.ts';
import { defaultFeedPolicy, tierFeedPolicies } from './delivery/policy.ts';
import { replayJobs } from './delivery/replays.ts';
import { subscriptionRegistry } from './delivery/subscriptions.ts';
import { queueDepthGauge, topicMetrics } from './metrics.ts';
import { publishRateLimit, queueDepthLimit } from './quotas/limits.ts';
import { deadLetterRoutes } from './routes/deadletters.ts';
import { publishRoutes } from './routes/publish.ts';
import { receiveRoutes } from './routes/receive.ts';
import { replayRoutes } from './routes/replay.ts';
import { settleRoutes } from './routes/settle.ts';
import { streamRoutes } from './routes/stream.ts';
import { subscriptionRoutes } from './routes/subscriptions.ts';

export type TopicOptions = Pick<
  TopicConfig,
  | 'PUBLIC_BASE_URL'
  | 'INSTANCE_URL'
  | 'LOCK_DURATION_SEC'
  | 'MAX_BATCH_BYTES'
  | 'SAS_KEY_CACHE_SEC'
  | 'REVOCATION_CACHE_SEC'
  | 'PUBLISH_RATE_PER_SEC'
  | 'PUBLISH_BURST'
  | 'MAX_QUEUE_DEPTH'
  | 'STREAM_HEARTBEAT_SEC'
  | 'SUBSCRIPTION_CACHE_SEC'
  | 'MAX_DELIVERIES'
  | 'QUEUE_DEPTH_POLL_SEC'
  | 'REPLAY_RETENTION_SEC'
  | 'REPLAY_MAX_BYTES'
  | 'MESSAGE_TTL_SEC'
  | 'DUPLICATE_WINDOW_SEC'
>;

export interface TopicDeps {
  broker: Broker;
  /** this service's store (prefix `${STORE_PREFIX}:topic:`): publish rate counters, subscription names, the instances holding locks */
  store: Store;
  /** where it appends its audit stream "topic" (resubmitted dead letters, replays): its database, as its own role */
  auditDb: AuditDb;
  /** PAC's verdict on a SAS key's signature (the tenant keys stay at PAC); rejects when it cannot be had */
  sasSignatures: SasSignatureSource;
  /** whether PAC revoked an issued key, and the DPoP key it is bound to (rejects when PAC cannot answer) */
  sasKeyStatus: KeyStatusSource;
  /** the names of a feed's listed subscriptions and its tier's delivery policy, from the entitlement service (rejects when it cannot answer) */
  subscriptionNames: SubscriptionSource;
  /** another topic instance at the base URL it listed, called with this service's client certificate (mTLS) */
  peer: (baseUrl: string) => Peer;
  logger: Logger;
  /** milliseconds since the epoch; SAS expiry, lock deadlines and rate windows are read from it */
  now?: () => number;
}

/**
 * How long a publish waits for another publish of the same batch id to be confirmed (then 409, retry
 * later): a confirm takes milliseconds, and a client's own timeout (5 s for ours) must not run out first.
 */
const DUPLICATE_IN_FLIGHT_WAIT_MS = 2500;

/**
 * A refusal answered before the request body was read (401 before parsing) closes the connection
 * once answered, rather than read the rest of the upload to keep the connection alive.
 */
const closeUnreadBody: ErrorRequestHandler = (err, req, res, next) => {
  if (!req.complete && !res.headersSent) res.set('Connection', 'close');
  next(err);
};

/**
 * An Express app plus close(), which unlists the instance (its lock tokens answer 410 everywhere),
 * returns every locked message to its queue, stops lock timers and the queue depth gauge.
 */
export type TopicApp = Express & { close(): Promise<void> };

/** Publish, peek-lock receive (one message or a stream), settle; never listens (main.ts and tests do). */
export function createApp(options: TopicOptions, deps: TopicDeps): TopicApp {
  const now = deps.now ?? Date.now;
  const audit = createAuditLog({ db: deps.auditDb, store: deps.store, service: 'topic', logger: deps.logger, now });
  const trail = topicTrail(audit);
  const app = createBaseApp({
    service: 'topic',
    openapi: topicApi,
    logger: deps.logger,
    // style rule 10: not ready unless the trail takes writes, as resubmits and replays are recorded
    readiness: [{ name: 'broker', check: () => deps.broker.ping() }, ...readinessWithTrail(deps.store, audit)],
    // Bodies are parsed by the routes that take one, after the SAS key is checked (issue 9: an
    // unauthenticated 1 MiB upload was read before it was refused).
    parseBodies: false,
  });
  // Answers here are POST results, never revalidated: hashing every received batch for an ETag is waste.
  app.set('etag', false);
  const guard = sasGuard({
    publicBaseUrl: options.PUBLIC_BASE_URL,
    verifySignature: sasSignatureCache(deps.sasSignatures, { ttlMs: options.SAS_KEY_CACHE_SEC * 1000, now }),
    keyStatus: keyStatusCache(deps.sasKeyStatus, { ttlMs: options.REVOCATION_CACHE_SEC * 1000, now }),
    // no nonce at a resource (RFC 9449 §9 leaves it to the server): iat and the single-use jti bound a replay
    dpop: dpopGuardOnDemand({ store: deps.store, publicOrigin: options.PUBLIC_BASE_URL, requireNonce: false, iatWindowSec: DPOP_IAT_WINDOW_SEC, resource: true }),
    now,
  });
  const inventory = subscriptionInventory(deps.subscriptionNames, { ttlMs: options.SUBSCRIPTION_CACHE_SEC * 1000, now });
  const policies = tierFeedPolicies(inventory, defaultFeedPolicy(options));
  const subscriptions = subscriptionRegistry(deps.broker, deps.store, deps.logger, inventory, policies, now);
  const replays = replayJobs({ broker: deps.broker, store: deps.store, policies, logger: deps.logger, now });
  const instances = instanceRegistry(deps.store, { url: options.INSTANCE_URL ?? options.PUBLIC_BASE_URL, logger: deps.logger });
  // instruments made here, after the process registered its MeterProvider (no-ops before)
  const metrics = topicMetrics();
  const depthGauge = queueDepthGauge(deps.broker, () => subscriptions.queues(), { pollMs: options.QUEUE_DEPTH_POLL_SEC * 1000 });
  const locks = lockTable({ instance: instances.id, lockDurationMs: options.LOCK_DURATION_SEC * 1000, maxDeliveries: options.MAX_DELIVERIES, metrics, now, logger: deps.logger });
  const settler = lockSettler({ locks, instances, peer: deps.peer, logger: deps.logger });
  const quotas = {
    rate: publishRateLimit(deps.store, { ratePerSec: options.PUBLISH_RATE_PER_SEC, burst: options.PUBLISH_BURST, now }),
    depth: queueDepthLimit(deps.broker, subscriptions, { maxDepth: options.MAX_QUEUE_DEPTH, now }),
  };

  // applies to the inflated size of gzip bodies too, so a small compressed bomb is still 413
  const body = jsonBody(String(options.MAX_BATCH_BYTES));
  // a second publish of a batch id waits this long for the first's confirm before 409
  const duplicates = duplicateDetection(deps.store, { inFlightWaitMs: DUPLICATE_IN_FLIGHT_WAIT_MS, logger: deps.logger });
  app.use(publishRoutes({ guard, broker: deps.broker, subscriptions, quotas, body, metrics, policies, duplicates }));
  app.use(receiveRoutes({ guard, broker: deps.broker, subscriptions, locks, metrics }));
  app.use(
    streamRoutes({
      guard,
      broker: deps.broker,
      subscriptions,
      locks,
      heartbeatMs: options.STREAM_HEARTBEAT_SEC * 1000,
      // as often as a revocation can show (the revocation cache), at least every second
      recheckMs: Math.max(1000, options.REVOCATION_CACHE_SEC * 1000),
      metrics,
    }),
  );
  // a batch complete: 500 locks of a 128-character message id each come to about 100 KB
  app.use(settleRoutes({ guard, settler, body: jsonBody('16kb'), locksBody: jsonBody('128kb') }));
  app.use(deadLetterRoutes({ guard, broker: deps.broker, subscriptions, trail, body: jsonBody('16kb') }));
  app.use(replayRoutes({ guard, subscriptions, replays, trail, body: jsonBody('16kb') }));
  app.use(subscriptionRoutes({ broker: deps.broker, subscriptions, replays, body: jsonBody('16kb') }));
  app.use(closeUnreadBody);
  return Object.assign(finishApp(app, deps.logger), {
    close: async () => {
      depthGauge.close();
      // interrupted replays are recorded before the instance unlists itself
      await replays.close();
      await instances.close();
      await locks.close();
    },
  });
}
