import { runService } from '@keyway/kit';
import { createBroker } from '@keyway/broker';
import { entitlementClient, pacClient } from '@keyway/clients';
import { createStore } from '@keyway/store';
import { createApp } from './app.ts';
import { pacSasSignatures } from './auth/sas-signatures.ts';
import { entitlementSubscriptions } from './delivery/inventory.ts';
import { TopicEnv } from './config.ts';

await runService('topic', TopicEnv, async (config, { logger, tls }) => {
  const store = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:topic:`, onError: (err) => logger.warn('store.error', { err }) });
  const broker = await createBroker({
    amqpUrl: config.AMQP_URL,
    queueType: config.QUEUE_TYPE,
    maxDeliveries: config.MAX_DELIVERIES,
    prefetch: config.BROKER_PREFETCH,
    subscriptionExpiresMs: config.SUBSCRIPTION_EXPIRY_SEC * 1000,
    maxQueueLength: config.MAX_QUEUE_DEPTH,
    connectionName: 'keyway-topic',
    onError: (err) => logger.warn('broker.error', { err }),
  });
  // mTLS with this service's own certificate: PAC checks SAS signatures for the topic service only.
  const pac = pacClient({ baseUrl: config.PAC_URL, caPem: tls.caPem, clientCert: { certPem: tls.certPem, keyPem: tls.keyPem } });
  // mTLS likewise: the entitlement service lists a feed's subscriptions to the topic service only.
  const entitlement = entitlementClient({ baseUrl: config.ENTITLEMENT_URL, caPem: tls.caPem, clientCert: { certPem: tls.certPem, keyPem: tls.keyPem } });
  const app = createApp(config, {
    broker,
    store,
    sasSignatures: pacSasSignatures(pac),
    sasKeyRevoked: async (keyId) => (await pac.sasKeyStatus(keyId)).revoked,
    subscriptionNames: entitlementSubscriptions(entitlement),
    logger,
  });
  // the listener stops first (runService), then locks go back to their queues, then the broker and the store close
  return { app, close: [() => app.close(), () => broker.close(), () => store.close()] };
});
