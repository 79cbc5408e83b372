import type { Express, RequestHandler } from 'express';
import { createAuditLog, readinessWithTrail, requireWritableTrail, securityMetrics, stepUpRefusals, type AuditDb } from '@keyway/audit';
import type { IdpClient } from '@keyway/clients';
import { entitlementApi, VENDOR_TENANT, type Introspection, type ReplayRequest, type ReplayStatus } from '@keyway/contracts';
import { createBaseApp, finishApp, requireOperator, requireRecentAuthentication, type Logger } from '@keyway/kit';
import type { Broker, TopicRef } from '@keyway/broker';
import type { RecordStore, Store } from '@keyway/store';
import { operatorTokenChecker, type JWTVerifyGetKey } from '@keyway/tokens';
import { adminOperations } from './admin/operations.ts';
import { consoleRoutes, type ConsoleDeps } from './console/routes.ts';
import { crmDeliveries } from './crm/deliveries.ts';
import { changeEvents } from './events/changes.ts';
import { policyRepository } from './policy/repository.ts';
import { clientKeyRoutes } from './routes/admin/client-keys.ts';
import { feedRoutes } from './routes/admin/feeds.ts';
import { roleRoutes } from './routes/admin/roles.ts';
import { tenantRoutes } from './routes/admin/tenants.ts';
import { tierRoutes } from './routes/admin/tiers.ts';
import { userRoutes } from './routes/admin/users.ts';
import { authorizeRoutes } from './routes/authorize.ts';
import { feedEntitlementRoutes } from './routes/feed-entitlement.ts';
import { subscriptionInventoryRoutes } from './routes/subscriptions.ts';
import { CRM_WEBHOOK_PATH, crmWebhookRoutes } from './routes/crm-webhook.ts';

const DEFAULT_MAX_SUBSCRIPTIONS_PER_FEED = 20;

export interface EntitlementOptions {
  /** this service's URL: operator access tokens must name it in "aud" (RFC 8707; PAS's ADMIN_AUDIENCES) */
  publicUrl: string;
  /** PAS: the issuer of operator access tokens */
  pasIssuer: string;
  clockToleranceSec: number;
  /** the vendor's tenant, whose users alone may hold the operator role (default "vendor") */
  operatorTenant?: string;
  /** the secret the CRM signs webhook deliveries with; unset = CRM sync off (404) */
  crmWebhookSecret?: string;
  /** how long PAS's introspection answer for an operator token is reused (default 5 s) */
  operatorTokenCacheMs?: number;
  /** RFC 9470 step-up: deleting a tenant needs an operator login with a second factor at most this old (default 300) */
  stepUpMaxAgeSec?: number;
  /** the most subscriptions one feed of a tenant may list (default 20) */
  maxSubscriptionsPerFeed?: number;
  now?: () => number;
}

export interface EntitlementDeps {
  /** the system of record: tenants, users, tiers, subscriptions, CRM delivery ids and the change-event outbox */
  records: RecordStore;
  /** hot, expiring state */
  store: Store;
  /** where it appends its audit stream "entitlement": its database, as its own role */
  auditDb: AuditDb;
  idp: IdpClient;
  /** carries change events to PAS and PAC; a subscription dropped from the inventory has its queues deleted here */
  broker: Broker;
  /** the topic service declares a subscription's queues (with its queue bounds); rejects when it cannot */
  declareSubscription: (tenant: string, feed: string, name: string, options?: { startAt?: string }) => Promise<void>;
  /** the topic service moves up to `max` of a subscription's dead letters back to it; resolves with how many */
  resubmitDeadLetters: (tenant: string, feed: string, name: string, max: number) => Promise<number>;
  /** the topic service starts a replay of the feed's retained batches into a subscription; resolves with its first status */
  replay: (tenant: string, feed: string, name: string, request: ReplayRequest) => Promise<ReplayStatus>;
  /** a replay's status at the topic service */
  replayStatus: (tenant: string, feed: string, name: string, replayId: string) => Promise<ReplayStatus>;
  /** the topic service deletes a feed's replay stream (the feed was removed from the tenant); idempotent; rejects when it cannot */
  deleteFeedStream: (tenant: string, feed: string) => Promise<void>;
  /** where change events are published (default: the shared entitlement-changes topic) */
  changeEventsTopic?: TopicRef;
  /** PAS's published keys (remoteKeySet over the PAS client), for operator access tokens */
  pasKeys: JWTVerifyGetKey;
  /** RFC 7662 introspection of an access token at PAS, authenticated with this service's certificate */
  introspect: (accessToken: string) => Promise<Introspection>;
  /** the operator console at /console/ (its sign-in, key rotation and audit view reach PAS, PAC and the audit service); unset = no console */
  console?: ConsoleDeps;
  logger: Logger;
}

export type EntitlementApp = Express & { close(): Promise<void> };

export function createApp(options: EntitlementOptions, deps: EntitlementDeps): EntitlementApp {
  const now = options.now ?? Date.now;
  const operatorTenant = options.operatorTenant ?? VENDOR_TENANT;
  const audit = createAuditLog({ db: deps.auditDb, store: deps.store, service: 'entitlement', logger: deps.logger });
  const metrics = securityMetrics();
  const app = createBaseApp({
    service: 'entitlement',
    logger: deps.logger,
    // style rule 10: not ready unless the trail takes writes, since no admin change is made without it
    readiness: [{ name: 'database', check: () => deps.records.ping() }, ...readinessWithTrail(deps.store, audit)],
    rawBodyPaths: [CRM_WEBHOOK_PATH],
    openapi: entitlementApi,
  });
  const policy = policyRepository(deps.records);
  const events = changeEvents(deps.records, deps.broker, deps.logger, deps.changeEventsTopic);
  const admin = adminOperations({
    policy,
    idp: deps.idp,
    events,
    operatorTenant,
    audit,
    deleteSubscriptionQueues: (tenant, feed, name) => deps.broker.deleteSubscription({ tenant, topic: feed }, name),
    declareSubscriptionQueues: deps.declareSubscription,
    resubmitDeadLetters: deps.resubmitDeadLetters,
    replay: deps.replay,
    replayStatus: deps.replayStatus,
    deleteFeedStream: deps.deleteFeedStream,
    maxSubscriptionsPerFeed: options.maxSubscriptionsPerFeed ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_FEED,
  });

  app.use(authorizeRoutes(policy, operatorTenant, { audit, metrics }));
  app.use(subscriptionInventoryRoutes(policy));
  app.use(feedEntitlementRoutes(policy));
  app.use(crmWebhookRoutes({ secret: options.crmWebhookSecret, deliveries: crmDeliveries(deps.records), policy, admin, operatorTenant, nowSec: () => Math.floor(now() / 1000), audit }));

  // The admin API answers operators: the operator client certificate, or an operator bearer token.
  const operatorTokens = operatorTokenChecker(options, { keys: deps.pasKeys, introspect: (token) => deps.introspect(token) });
  app.use(['/v1/tenants', '/v1/tiers', '/v1/roles'], requireOperator({ verify: operatorTokens }));
  // A change is refused before it is made when the trail cannot record it (style rule 10).
  const trailWritable: RequestHandler = (req, _res, next) => (req.method === 'GET' || req.method === 'HEAD' ? next() : requireWritableTrail(audit).then(() => next(), next));
  app.use(['/v1/tenants', '/v1/tiers'], trailWritable);
  if (deps.console) app.use(consoleRoutes(deps.console, operatorTokens));
  // a destructive action: a person's token must be a recent login with a second factor (RFC 9470)
  const recentLogin = requireRecentAuthentication({ maxAgeSec: options.stepUpMaxAgeSec ?? 300, now, onRefused: stepUpRefusals(audit) });
  app.use(tenantRoutes(policy, admin, recentLogin));
  app.use(userRoutes(policy, admin));
  app.use(clientKeyRoutes(admin));
  app.use(feedRoutes(policy, admin));
  app.use(tierRoutes(policy, admin));
  app.use(roleRoutes());
  return Object.assign(finishApp(app, deps.logger), {
    close: async () => events.close(),
  });
}
