import { entitlementClient, pacClient, topicClient } from '@keyway/clients';
import { serviceResources, type ServiceInfra } from '@keyway/kit';
import { createApp } from './app.ts';
import { pacSasSignatures } from './auth/sas-signatures.ts';
import type { TopicConfig } from './config.ts';
import { entitlementSubscriptions } from './delivery/inventory.ts';

/** The bounds of the subscription queues: the topic service declares them, so an embedded broker shared in one process takes them too. */
export const topicBrokerOptions = (config: TopicConfig) => ({
  queueType: config.QUEUE_TYPE,
  maxDeliveries: config.MAX_DELIVERIES,
  prefetch: config.BROKER_PREFETCH,
  subscriptionExpiresMs: config.SUBSCRIPTION_EXPIRY_SEC * 1000,
  maxQueueLength: config.MAX_QUEUE_DEPTH,
});

/** how long a settle passed on to the instance holding the lock may take before that lock counts as lost */
const PEER_TIMEOUT_MS = 5000;

/** The topic service from its parsed config: main.ts, the dev launcher and the tests all start it here. */
export async function buildTopic(config: TopicConfig, infra: ServiceInfra) {
  const { logger, tls } = infra;
  const resources = serviceResources('topic', config, infra);
  const store = await resources.store();
  const auditDb = await resources.auditDatabase();
  const broker = await resources.broker(topicBrokerOptions(config));
  // mTLS with this service's own certificate: PAC checks SAS signatures for the topic service only.
  const pac = pacClient({ baseUrl: config.PAC_URL, tls });
  // mTLS likewise: the entitlement service lists a feed's subscriptions to the topic service only.
  const entitlement = entitlementClient({ baseUrl: config.ENTITLEMENT_URL, tls });
  const app = createApp(config, {
    broker,
    store,
    auditDb,
    sasSignatures: pacSasSignatures(pac),
    sasKeyStatus: async (keyId) => {
      const { revoked, jkt } = await pac.sasKeyStatus(keyId);
      return { revoked, jkt };
    },
    subscriptionNames: entitlementSubscriptions(entitlement),
    // mTLS likewise: another instance settles a lock it holds only for a topic-service certificate
    peer: (baseUrl) => topicClient({ baseUrl, tls, timeoutMs: PEER_TIMEOUT_MS }),
    logger,
  });
  // the listener stops first (runService), then locks go back to their queues, then the broker and the store close
  return { app, store, close: [() => app.close(), ...resources.close] };
}
