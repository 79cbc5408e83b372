import type { Express } from 'express';
import type { IdpClient } from '@keyway/clients';
import { entitlementApi, VENDOR_TENANT, type Introspection } from '@keyway/contracts';
import { createBaseApp, finishApp, requireOperator, type Logger } from '@keyway/kit';
import type { Broker, TopicRef } from '@keyway/broker';
import type { Store } from '@keyway/store';
import { accessTokenChecker, type JWTVerifyGetKey } from '@keyway/tokens';
import { adminOperations } from './admin/operations.ts';
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
import { CRM_WEBHOOK_PATH, crmWebhookRoutes } from './routes/crm-webhook.ts';

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
  now?: () => number;
}

export interface EntitlementDeps {
  store: Store;
  idp: IdpClient;
  /** carries change events to PAS and PAC */
  broker: Broker;
  /** where change events are published (default: the shared entitlement-changes topic) */
  changeEventsTopic?: TopicRef;
  /** PAS's published keys (remoteKeySet over the PAS client), for operator access tokens */
  pasKeys: JWTVerifyGetKey;
  /** RFC 7662 introspection of an access token at PAS, authenticated with this service's certificate */
  introspect: (accessToken: string) => Promise<Introspection>;
  logger: Logger;
}

export type EntitlementApp = Express & { close(): void };

export function createApp(options: EntitlementOptions, deps: EntitlementDeps): EntitlementApp {
  const now = options.now ?? Date.now;
  const operatorTenant = options.operatorTenant ?? VENDOR_TENANT;
  const app = createBaseApp({
    service: 'entitlement',
    logger: deps.logger,
    readiness: [{ name: 'store', check: () => deps.store.ping() }],
    rawBodyPaths: [CRM_WEBHOOK_PATH],
    openapi: entitlementApi,
  });
  const policy = policyRepository(deps.store);
  const events = changeEvents(deps.store, deps.broker, deps.logger, deps.changeEventsTopic);
  const admin = adminOperations({ policy, idp: deps.idp, events, operatorTenant });

  app.use(authorizeRoutes(policy, operatorTenant));
  app.use(crmWebhookRoutes({ secret: options.crmWebhookSecret, deliveries: crmDeliveries(deps.store), policy, admin, operatorTenant, nowSec: () => Math.floor(now() / 1000) }));

  // The admin API answers operators: the operator client certificate, or an operator bearer token.
  const operatorTokens = accessTokenChecker({
    issuer: options.pasIssuer,
    audience: options.publicUrl,
    clockToleranceSec: options.clockToleranceSec,
    now: options.now,
    keys: deps.pasKeys,
    isActive: async (token) => (await deps.introspect(token)).active,
    cacheMs: options.operatorTokenCacheMs,
  });
  app.use(['/v1/tenants', '/v1/tiers', '/v1/roles'], requireOperator({ verify: operatorTokens }));
  app.use(tenantRoutes(policy, admin));
  app.use(userRoutes(policy, admin));
  app.use(clientKeyRoutes(policy, deps.idp));
  app.use(feedRoutes(policy, admin));
  app.use(tierRoutes(policy, admin));
  app.use(roleRoutes());
  return Object.assign(finishApp(app, deps.logger), { close: () => events.close() });
}
