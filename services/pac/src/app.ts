import type { Express } from 'express';
import { createAuditLog, noiseGate, readinessWithTrail, securityMetrics, stepUpRefusals, type AuditDb } from '@keyway/audit';
import { createBaseApp, DPOP_IAT_WINDOW_SEC, dpopGuardOnDemand, finishApp, requireOperator, requireRecentAuthentication, type Logger } from '@keyway/kit';
import type { Broker, TopicRef } from '@keyway/broker';
import type { Keyring } from '@keyway/seal';
import type { Store } from '@keyway/store';
import { recordRevocation, revokeOnEntitlementChange } from './revocation/on-entitlement-change.ts';
import type { HolderCheck } from './sas/holder-check.ts';
import { operatorTokenChecker, type JWTVerifyGetKey } from '@keyway/tokens';
import { pacApi, type Introspection } from '@keyway/contracts';
import { sasKeyStatusEndpoint } from './endpoints/sas-key-status.ts';
import { sasEndpoint, type SasEndpointOptions } from './endpoints/sas.ts';
import { sasKeyRotationEndpoint } from './endpoints/sas-key-rotation.ts';
import { sasKeyVerificationEndpoint } from './endpoints/sas-key-verification.ts';
import { sasPolicyKeysEndpoint } from './endpoints/sas-policy-keys.ts';
import { issuedRegistry } from './issued/registry.ts';
import { tenantKeys } from './keys/tenant-keys.ts';

export type PacOptions = SasEndpointOptions & {
  /** PAC's own URL: the "aud" operator access tokens must name at its admin API (PAS's ACCESS_AUDIENCE) */
  publicUrl: string;
  /** strict (default): entitlement removals revoke issued SAS keys, and every mint and key check asks the entitlement service; lenient: keys last until they expire */
  revocationMode?: 'strict' | 'lenient';
  /** how long PAS's introspection answer for an operator token is reused (default 5 s) */
  operatorTokenCacheMs?: number;
  /** RFC 9470 step-up: SAS key rotation needs an operator login with a second factor at most this old (default 300) */
  stepUpMaxAgeSec?: number;
  /** unauthenticated refusals (tokens that do not verify, malformed requests) one source may cause per window before 429 (default 120) */
  refusalsPerSource?: number;
  /** that window, also the one refusals are aggregated over: one audit event per source (default 60 s) */
  refusalWindowSec?: number;
};

export interface PacDeps {
  /** the system of record: tenant SAS root keys and the issued-key registry */
  records: Store;
  /** hot, expiring state: refusal counters */
  store: Store;
  /** where it appends its audit stream "pac": its database, as its own role */
  auditDb: AuditDb;
  /** PAS's published keys (remoteKeySet over the PAS client) */
  pasKeys: JWTVerifyGetKey;
  /** RFC 7662 introspection at PAS, authenticated with PAC's client certificate */
  introspect: (token: string, hint: 'refresh_token' | 'access_token') => Promise<Introspection>;
  /** the entitlement service's decision on a key holder, asked at every mint and key check in strict mode (issue 11) */
  holders: HolderCheck;
  /** where the entitlement service's change events arrive (followed in strict mode) */
  broker: Broker;
  /** the change-event topic (default: the shared entitlement-changes topic) */
  changeEventsTopic?: TopicRef;
  logger: Logger;
  /** the KEKs the tenants' SAS root keys are sealed under in the store */
  kek: Keyring;
}

export type PacApp = Express & { close(): Promise<void> };

/** Access control: the only service that mints SAS keys. */
export function createApp(options: PacOptions, deps: PacDeps): PacApp {
  const trail = { audit: createAuditLog({ db: deps.auditDb, store: deps.store, service: 'pac', logger: deps.logger }), metrics: securityMetrics() };
  const app = createBaseApp({
    service: 'pac',
    logger: deps.logger,
    // style rule 10: not ready unless the trail takes writes, since no SAS key is minted without it
    readiness: [{ name: 'database', check: () => deps.records.ping() }, ...readinessWithTrail(deps.store, trail.audit)],
    openapi: pacApi,
  });
  const strict = (options.revocationMode ?? 'strict') === 'strict';
  const holders = strict ? deps.holders : undefined;
  const keys = tenantKeys(deps.records, deps.kek);
  const issued = issuedRegistry(deps.records, options.now, (options.sasTtlSec + options.clockToleranceSec) * 1000);
  // issue 9: refusals that name nobody are limited per source and aggregated, never one event each
  const noise = noiseGate({ log: trail.audit, store: deps.store, logger: deps.logger, perSource: options.refusalsPerSource ?? 120, windowMs: (options.refusalWindowSec ?? 60) * 1000 });
  // RFC 9449 at PAC: proofs name PAC's public URL, carry PAC's nonce, and their jti is spent in the shared store
  const dpop = dpopGuardOnDemand({ store: deps.store, publicOrigin: options.publicUrl, requireNonce: true, iatWindowSec: DPOP_IAT_WINDOW_SEC, resource: false });
  app.use(sasEndpoint(options, { pasKeys: deps.pasKeys, introspect: (token) => deps.introspect(token, 'refresh_token'), holders, keys, issued, noise, ...trail }, dpop));
  app.use(sasKeyVerificationEndpoint(keys, options));
  const operatorTokens = operatorTokenChecker(options, { keys: deps.pasKeys, introspect: (token) => deps.introspect(token, 'access_token') });
  const operator = requireOperator({ verify: operatorTokens });
  // a destructive action: a person's token must be a recent login with a second factor (RFC 9470)
  const recentOperator = [operator, requireRecentAuthentication({ maxAgeSec: options.stepUpMaxAgeSec ?? 300, now: options.now, onRefused: stepUpRefusals(trail.audit) })];
  app.use(sasKeyRotationEndpoint(keys, recentOperator, trail.audit));
  app.use(sasPolicyKeysEndpoint(keys, operator, trail.audit));
  app.use(sasKeyStatusEndpoint(issued, holders, (key, reason) => recordRevocation(deps.logger, trail, key, reason, {})));
  const follower = strict ? revokeOnEntitlementChange(deps.broker, issued, deps.logger, trail, deps.changeEventsTopic) : undefined;
  return Object.assign(finishApp(app, deps.logger), {
    close: async () => {
      await follower?.stop();
      await noise.close();
    },
  });
}
