import { runService } from '@keyway/kit';
import { createBroker } from '@keyway/broker';
import { pacClient } from '@keyway/clients';
import { createApp } from './app.ts';
import { pacSasKeys } from './auth/pac-keys.ts';
import { TopicEnv } from './config.ts';

await runService('topic', TopicEnv, async (config, { logger, tls }) => {
  const broker = await createBroker({
    amqpUrl: config.AMQP_URL,
    queueType: config.QUEUE_TYPE,
    maxDeliveries: config.MAX_DELIVERIES,
    connectionName: 'keyway-topic',
    onError: (err) => logger.warn('broker.error', { err }),
  });
  // mTLS with this service's own certificate: PAC answers tenant keys to the topic service only.
  const pac = pacClient({ baseUrl: config.PAC_URL, caPem: tls.caPem, clientCert: { certPem: tls.certPem, keyPem: tls.keyPem } });
  const app = createApp(config, { broker, sasKeys: pacSasKeys(pac), logger });
  // the listener stops first (runService), then locks go back to their queues, then the broker closes
  return { app, close: [() => app.close(), () => broker.close()] };
});
