import { entitlementClient, pasClient, topicClient } from '@keyway/clients';
import type { Logger, Started, TlsMaterial } from '@keyway/kit';
import { createStore, type Store } from '@keyway/store';
import { remoteKeySet, type JWTVerifyGetKey } from '@keyway/tokens';
import { createApp, type AuditDeps } from './app.ts';
import type { AuditEnv } from './config.ts';

/** What the build reads of the configuration (runService passes all of AuditEnv; the testkit only this). */
export type AuditBuildConfig = Pick<
  AuditEnv,
  'REDIS_URL' | 'STORE_PREFIX' | 'PUBLIC_URL' | 'PAS_URL' | 'ENTITLEMENT_URL' | 'TOPIC_URL' | 'OPERATOR_TENANT' | 'CLOCK_TOLERANCE_SEC' | 'AUDIT_EXPORT_INTERVAL_MS'
>;

export interface AuditBuildContext {
  logger: Logger;
  tls: TlsMaterial;
  /** stores made by the caller (tests share one embedded audit keyspace); they are then closed by the caller too */
  store?: Store;
  auditStore?: Store;
  /** PAS's keys with another cache (tests: short cooldown); default remoteKeySet over PAS's JWKS */
  pasKeys?: JWTVerifyGetKey;
  entitlement?: AuditDeps['entitlement'];
  topic?: AuditDeps['topic'];
  /** how long PAS's introspection answer for an operator token is reused (default 5 s) */
  operatorTokenCacheMs?: number;
}

/** The audit service from its configuration: what runService's factory returns (main.ts) and what the testkit binds. */
export async function buildAudit(config: AuditBuildConfig, context: AuditBuildContext) {
  const { logger, tls } = context;
  const owned: Store[] = [];
  const own = async (prefix: string) => {
    const store = await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:${prefix}:` });
    owned.push(store);
    return store;
  };
  // its own keys (the exporter's checkpoints) are not in the audit keyspace, which only the services' appends write
  const store = context.store ?? (await own('audit-service'));
  // the one audit keyspace every service appends to (packages/audit layout)
  const auditStore = context.auditStore ?? (await own('audit'));
  const asService = { caPem: tls.caPem, clientCert: tls };
  const pas = pasClient({ ...asService, baseUrl: config.PAS_URL });
  const app = createApp(
    {
      publicUrl: config.PUBLIC_URL,
      pasIssuer: config.PAS_URL,
      clockToleranceSec: config.CLOCK_TOLERANCE_SEC,
      operatorTenant: config.OPERATOR_TENANT,
      operatorTokenCacheMs: context.operatorTokenCacheMs,
      auditExportIntervalMs: config.AUDIT_EXPORT_INTERVAL_MS,
    },
    {
      store,
      auditStore,
      entitlement: context.entitlement ?? entitlementClient({ ...asService, baseUrl: config.ENTITLEMENT_URL }),
      topic: context.topic ?? topicClient({ ...asService, baseUrl: config.TOPIC_URL }),
      pasKeys: context.pasKeys ?? remoteKeySet(() => pas.jwks()),
      introspect: (token) => pas.introspect(token, 'access_token'),
      logger,
    },
  );
  return { app, close: [() => app.close(), ...owned.map((store) => () => store.close())] } satisfies Started;
}
