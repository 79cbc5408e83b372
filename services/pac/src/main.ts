import { pasClient } from '@keyway/clients';
import { createBroker } from '@keyway/broker';
import { runService } from '@keyway/kit';
import { createStore } from '@keyway/store';
import { remoteKeySet } from '@keyway/tokens';
import { createApp } from './app.ts';
import { PacEnv } from './config.ts';

await runService('pac', PacEnv, async (config, { logger, tls }) => {
  const store = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:pac:` });
  // One audit keyspace for every service (packages/audit layout), so the trail is queried across services.
  const auditStore = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:audit:` });
  const pas = pasClient({ baseUrl: config.PAS_URL, caPem: tls.caPem, clientCert: tls });
  const broker = await createBroker({ amqpUrl: config.AMQP_URL, connectionName: 'keyway-pac', onError: (err) => logger.warn('broker.error', { err }) });
  if (!config.AMQP_URL && config.REVOCATION_MODE === 'strict') logger.warn('strict revocation follows change events over RabbitMQ: set AMQP_URL when services run as separate processes');
  const app = createApp(
    { publicUrl: config.PUBLIC_URL, pasIssuer: config.PAS_URL, topicBaseUrl: config.TOPIC_BASE_URL, sasTtlSec: config.SAS_TTL_SEC, clockToleranceSec: config.CLOCK_TOLERANCE_SEC, revocationMode: config.REVOCATION_MODE, refusalsPerSource: config.REFUSALS_PER_SOURCE, refusalWindowSec: config.REFUSAL_WINDOW_SEC },
    { store, auditStore, broker, pasKeys: remoteKeySet(() => pas.jwks()), introspect: (token, hint) => pas.introspect(token, hint), logger },
  );
  return { app, close: [() => app.close(), () => broker.close(), () => auditStore.close(), () => store.close()] };
});
