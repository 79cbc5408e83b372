import type { Express } from 'express';
import { auditApi, VENDOR_TENANT, type Introspection } from '@keyway/contracts';
import { createPublicKey } from 'node:crypto';
import type { CheckpointSigner } from '@keyway/audit';
import { createBaseApp, finishApp, requireOperator } from '@keyway/kit';
import { operatorTokenChecker, type JWTVerifyGetKey } from '@keyway/tokens';
import { auditExport, type AuditExportDeps } from './export/export.ts';
import { trailKeeper } from './keeper.ts';
import { auditRoutes } from './routes/audit.ts';

const DEFAULT_AUDIT_EXPORT_INTERVAL_MS = 1000;
const DEFAULT_CHECKPOINT_INTERVAL_MS = 10_000;

export interface AuditOptions {
  /** this service's URL: operator access tokens must name it in "aud" (RFC 8707; PAS's ADMIN_AUDIENCES) */
  publicUrl: string;
  /** PAS: the issuer of operator access tokens */
  pasIssuer: string;
  clockToleranceSec: number;
  /** the vendor's tenant: events without a tenant are exported to it, unredacted (default "vendor") */
  operatorTenant?: string;
  /** how long PAS's introspection answer for an operator token is reused (default 5 s) */
  operatorTokenCacheMs?: number;
  /** how often the exporter reads the streams (default 1000 ms; export/export.ts) */
  auditExportIntervalMs?: number;
  /** how often stream heads that moved are signed and the trail trimmed (default 10 s) */
  checkpointIntervalMs?: number;
  now?: () => number;
}

export interface AuditDeps extends AuditExportDeps {
  /** PAS's published keys (remoteKeySet over the PAS client), for operator access tokens */
  pasKeys: JWTVerifyGetKey;
  /** RFC 7662 introspection of an access token at PAS, authenticated with this service's certificate */
  introspect: (accessToken: string) => Promise<Introspection>;
  /** the key stream heads are signed with (AUDIT_CHECKPOINT_KEY_FILE); verify holds its public key */
  signer: CheckpointSigner;
}

export type AuditApp = Express & { close(): Promise<void> };

/**
 * The audit trail's read side and its export: the query and verify API for security teams (operator
 * certificate or operator token) and the exporter publishing each entitled tenant's events to its
 * `audit` topic. It only reads the trail; each service appends to its own stream.
 */
export function createApp(options: AuditOptions, deps: AuditDeps): AuditApp {
  const app = createBaseApp({
    service: 'audit',
    logger: deps.logger,
    readiness: [
      { name: 'audit database', check: async () => void (await deps.auditDb.query('SELECT 1')) },
      { name: 'database', check: () => deps.store.ping() },
    ],
    openapi: auditApi,
  });
  const exporter = auditExport(
    { auditDb: deps.auditDb, store: deps.store, entitlement: deps.entitlement, topic: deps.topic, logger: deps.logger },
    { intervalMs: options.auditExportIntervalMs ?? DEFAULT_AUDIT_EXPORT_INTERVAL_MS, operatorTenant: options.operatorTenant ?? VENDOR_TENANT },
  );
  const operatorTokens = operatorTokenChecker(options, { keys: deps.pasKeys, introspect: (token) => deps.introspect(token) });
  app.use('/v1/audit', requireOperator({ verify: operatorTokens }));
  const keeper = trailKeeper(deps, { intervalMs: options.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS });
  app.use(auditRoutes(deps.auditDb, createPublicKey(deps.signer.privateKey)));
  return Object.assign(finishApp(app, deps.logger), { close: () => Promise.all([exporter.stop(), keeper.stop()]).then(() => undefined) });
}
