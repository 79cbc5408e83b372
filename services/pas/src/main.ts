import { entitlementClient, idpClient } from '@keyway/clients';
import { createBroker } from '@keyway/broker';
import { runService } from '@keyway/kit';
import { createStore } from '@keyway/store';
import { createApp, tokenSettings } from './app.ts';
import { PasEnv } from './config.ts';
import { sharedKeyRing } from './keys/ring.ts';

await runService('pas', PasEnv, async (config, { logger, tls }) => {
  const store = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:pas:` });
  // One audit keyspace for every service (packages/audit layout), so the trail is queried across services.
  const auditStore = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:audit:` });
  const clientOptions = { caPem: tls.caPem, clientCert: tls };
  const broker = await createBroker({ amqpUrl: config.AMQP_URL, connectionName: 'keyway-pas', onError: (err) => logger.warn('broker.error', { err }) });
  if (!config.AMQP_URL && config.REVOCATION_MODE === 'strict') logger.warn('strict revocation follows change events over RabbitMQ: set AMQP_URL when services run as separate processes');
  const ring = await sharedKeyRing(store, { reloadMs: config.KEY_RING_RELOAD_SEC * 1000, logger });
  const app = createApp(
    {
      settings: tokenSettings(config),
      revocationMode: config.REVOCATION_MODE,
      signingKeyLeadSec: config.SIGNING_KEY_LEAD_SEC,
      loginLimits: {
        windowSec: config.LOGIN_WINDOW_SEC,
        failuresPerAccountSource: config.LOGIN_FAILURES_PER_ACCOUNT_SOURCE,
        failuresPerAccount: config.LOGIN_FAILURES_PER_ACCOUNT,
        failuresPerSource: config.LOGIN_FAILURES_PER_SOURCE,
        concurrentPerSource: config.LOGIN_CONCURRENT_PER_SOURCE,
        refusalsPerSource: config.REFUSALS_PER_SOURCE,
      },
      refusalWindowSec: config.REFUSAL_WINDOW_SEC,
    },
    {
      store,
      auditStore,
      broker,
      ring,
      idp: idpClient({ ...clientOptions, baseUrl: config.IDP_URL }),
      entitlement: entitlementClient({ ...clientOptions, baseUrl: config.ENTITLEMENT_URL }),
      logger,
    },
  );
  return { app, close: [() => app.close(), () => ring.close(), () => broker.close(), () => auditStore.close(), () => store.close()] };
});
