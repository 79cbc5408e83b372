import { auditClient, idpClient, pacClient, pasClient, releasesClient, topicClient } from '@keyway/clients';
import { changeEventServiceDeps, operatorTokenOptions, pasKeysCache, type ServiceInfra } from '@keyway/kit';
import { remoteKeySet } from '@keyway/tokens';
import { createApp } from './app.ts';
import type { EntitlementConfig } from './config.ts';

/** The entitlement service from its parsed config: main.ts, the dev launcher and the tests all start it here. */
export async function buildEntitlement(config: EntitlementConfig, infra: ServiceInfra) {
  const { tls } = infra;
  const { deps, close } = await changeEventServiceDeps('entitlement', config, infra);
  const idp = idpClient({ baseUrl: config.IDP_URL, tls });
  const pas = pasClient({ baseUrl: config.PAS_URL, tls });
  // mTLS: the topic service declares subscriptions for the entitlement service only
  const topic = topicClient({ baseUrl: config.TOPIC_URL, tls, timeoutMs: 10_000 });
  const app = createApp(
    {
      ...operatorTokenOptions(config),
      operatorTenant: config.OPERATOR_TENANT,
      stepUpMaxAgeSec: config.STEP_UP_MAX_AGE_SEC,
      crmWebhookSecret: config.CRM_WEBHOOK_SECRET,
      maxSubscriptionsPerFeed: config.MAX_SUBSCRIPTIONS_PER_FEED,
    },
    {
      ...deps,
      idp,
      declareSubscription: (tenant, feed, name, options) => topic.declareSubscription(tenant, feed, name, options),
      resubmitDeadLetters: (tenant, feed, name, max) => topic.resubmitDeadLettersInternal(tenant, feed, name, max),
      replay: (tenant, feed, name, request) => topic.replayInternal(tenant, feed, name, request),
      replayStatus: (tenant, feed, name, replayId) => topic.replayStatusInternal(tenant, feed, name, replayId),
      deleteFeedStream: (tenant, feed) => topic.deleteStream(tenant, feed),
      pasKeys: remoteKeySet(() => pas.jwks(), pasKeysCache(config)),
      introspect: (token) => pas.introspect(token, 'access_token'),
      // without a certificate: each console call carries the operator's own token
      console: {
        pas,
        pac: config.PAC_URL ? pacClient({ baseUrl: config.PAC_URL, tls, anonymous: true }) : undefined,
        audit: config.AUDIT_URL ? auditClient({ baseUrl: config.AUDIT_URL, tls, anonymous: true }) : undefined,
        releases: config.RELEASES_URL ? releasesClient({ baseUrl: config.RELEASES_URL, tls, anonymous: true }) : undefined,
      },
    },
  );
  return { app, records: deps.records, store: deps.store, close: [() => app.close(), ...close] };
}
