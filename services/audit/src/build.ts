import { entitlementClient, pasClient, topicClient } from '@keyway/clients';
import { operatorTokenOptions, pasKeysCache, serviceResources, type ServiceInfra } from '@keyway/kit';
import { remoteKeySet } from '@keyway/tokens';
import { createApp } from './app.ts';
import type { AuditConfig } from './config.ts';

/** The audit service from its parsed config: main.ts, the dev launcher and the tests all start it here. */
export async function buildAudit(config: AuditConfig, infra: ServiceInfra) {
  const { logger, tls } = infra;
  // its own keys (the exporter's checkpoints) are not in the audit keyspace, which only the services' appends write
  const resources = serviceResources('audit-service', config, infra);
  const store = await resources.store();
  const auditStore = await resources.auditStore();
  const asService = { caPem: tls.caPem, clientCert: tls };
  const pas = pasClient({ ...asService, baseUrl: config.PAS_URL });
  const app = createApp(
    {
      ...operatorTokenOptions(config),
      operatorTenant: config.OPERATOR_TENANT,
      auditExportIntervalMs: config.AUDIT_EXPORT_INTERVAL_MS,
    },
    {
      store,
      auditStore,
      entitlement: entitlementClient({ ...asService, baseUrl: config.ENTITLEMENT_URL }),
      topic: topicClient({ ...asService, baseUrl: config.TOPIC_URL }),
      pasKeys: remoteKeySet(() => pas.jwks(), pasKeysCache(config)),
      introspect: (token) => pas.introspect(token, 'access_token'),
      logger,
    },
  );
  return { app, store, close: [() => app.close(), ...resources.close] };
}
