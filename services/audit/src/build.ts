import { dirname, join } from 'node:path';
import { loadCheckpointSigner } from '@keyway/audit';
import { entitlementClient, pasClient, topicClient } from '@keyway/clients';
import { operatorTokenOptions, pasKeysCache, serviceResources, type ServiceInfra } from '@keyway/kit';
import { remoteKeySet } from '@keyway/tokens';
import { createApp } from './app.ts';
import type { AuditConfig } from './config.ts';

/** The audit service from its parsed config: main.ts, the dev launcher and the tests all start it here. */
export async function buildAudit(config: AuditConfig, infra: ServiceInfra) {
  const { logger, tls } = infra;
  // the trail and the exporter's positions are in the database, as role keyway_audit; nothing is in Redis
  const resources = serviceResources('audit', config, infra);
  const records = await resources.records();
  const auditDb = await resources.auditDatabase();
  // development: a key generated next to the dev PKI (as ensureDevPki does); production: the configured file (required)
  const development = config.KEYWAY_ENV === 'development';
  const signer = await loadCheckpointSigner(config.AUDIT_CHECKPOINT_KEY_FILE ?? join(dirname(config.TLS_KEY_FILE), 'audit-checkpoint.key'), { generate: development });
  const asService = { tls };
  const pas = pasClient({ ...asService, baseUrl: config.PAS_URL });
  const app = createApp(
    {
      ...operatorTokenOptions(config),
      operatorTenant: config.OPERATOR_TENANT,
      auditExportIntervalMs: config.AUDIT_EXPORT_INTERVAL_MS,
      checkpointIntervalMs: config.AUDIT_CHECKPOINT_INTERVAL_SEC * 1000,
    },
    {
      store: records,
      auditDb,
      signer,
      entitlement: entitlementClient({ ...asService, baseUrl: config.ENTITLEMENT_URL }),
      topic: topicClient({ ...asService, baseUrl: config.TOPIC_URL }),
      pasKeys: remoteKeySet(() => pas.jwks(), pasKeysCache(config)),
      introspect: (token) => pas.introspect(token, 'access_token'),
      logger,
    },
  );
  return { app, records, store: records, close: [() => app.close(), ...resources.close] };
}
