import { runService } from '@keyway/kit';
import { createBroker } from '@keyway/broker';
import { ApiError, pacClient } from '@keyway/clients';
import { createApp } from './app.ts';
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
  const sasKeys = async (tenant: string): Promise<string[]> => {
    try {
      const { primary, secondary } = await pac.tenantKeys(tenant);
      return [primary, secondary];
    } catch (err) {
      // an unknown tenant has no keys (its SAS keys fail as forgeries); anything else fails closed
      if (err instanceof ApiError && err.status === 404) return [];
      throw err;
    }
  };
  const app = createApp(config, { broker, sasKeys, logger });
  // the listener stops first (runService), then locks go back to their queues, then the broker closes
  return { app, close: [() => app.close(), () => broker.close()] };
});
