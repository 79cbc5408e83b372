import { createBroker } from '@keyway/broker';
import { auditClient, idpClient, pacClient, pasClient } from '@keyway/clients';
import { runService } from '@keyway/kit';
import { createStore } from '@keyway/store';
import { remoteKeySet } from '@keyway/tokens';
import { createApp } from './app.ts';
import { EntitlementEnv } from './config.ts';

await runService('entitlement', EntitlementEnv, async (config, { logger, tls }) => {
  const store = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:entitlement:` });
  // One audit keyspace for every service (packages/audit layout), so the trail is queried across services.
  const auditStore = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:audit:` });
  const idp = idpClient({ baseUrl: config.IDP_URL, caPem: tls.caPem, clientCert: tls });
  const pas = pasClient({ baseUrl: config.PAS_URL, caPem: tls.caPem, clientCert: tls });
  const broker = await createBroker({ amqpUrl: config.AMQP_URL, connectionName: 'keyway-entitlement', onError: (err) => logger.warn('broker.error', { err }) });
  const app = createApp(
    {
      publicUrl: config.PUBLIC_URL,
      pasIssuer: config.PAS_URL,
      clockToleranceSec: config.CLOCK_TOLERANCE_SEC,
      operatorTenant: config.OPERATOR_TENANT,
      crmWebhookSecret: config.CRM_WEBHOOK_SECRET,
      maxSubscriptionsPerFeed: config.MAX_SUBSCRIPTIONS_PER_FEED,
    },
    {
      store,
      auditStore,
      idp,
      broker,
      pasKeys: remoteKeySet(() => pas.jwks()),
      introspect: (token) => pas.introspect(token, 'access_token'),
      // without a certificate: each call carries the operator's own token
      console: {
        pas,
        pac: config.PAC_URL ? pacClient({ baseUrl: config.PAC_URL, caPem: tls.caPem }) : undefined,
        audit: config.AUDIT_URL ? auditClient({ baseUrl: config.AUDIT_URL, caPem: tls.caPem }) : undefined,
      },
      logger,
    },
  );
  return { app, close: [() => app.close(), () => broker.close(), () => auditStore.close(), () => store.close()] };
});
