import type { Express } from 'express';
import type { Queryable } from '@keyway/db';
import { idpApi, VENDOR_TENANT } from '@keyway/contracts';
import { createAuditLog, type AuditDb } from '@keyway/audit';
import { createBaseApp, finishApp, type BearerVerifier, type Logger } from '@keyway/kit';
import type { Keyring } from '@keyway/seal';
import type { Store } from '@keyway/store';
import { clientKeyRepository } from './credentials/client-keys.ts';
import { internalChanges } from './credentials/internal-changes.ts';
import { enrolmentWindows, passkeyChallenges, passkeyRepository } from './credentials/passkeys.ts';
import { credentialRepository } from './credentials/repository.ts';
import { secondFactorCheck } from './credentials/second-factor-check.ts';
import { secondFactors } from './credentials/second-factors.ts';
import { DEFAULT_VERIFICATION_LIMITS, verificationGuard, type VerificationLimits } from './credentials/verification-guard.ts';
import { assertionRoutes } from './routes/assertion.ts';
import { clientKeyRoutes } from './routes/client-keys.ts';
import { credentialRoutes } from './routes/credentials.ts';
import { passkeyRoutes, type RelyingParty } from './routes/passkeys.ts';
import { passwordRoutes } from './routes/password.ts';
import { secondFactorRoutes } from './routes/second-factor.ts';
import { sshKeyRoutes } from './routes/ssh-key.ts';

export interface IdpDeps {
  /** the system of record: password hashes, registered client public keys, second factors (TOTP secrets sealed) */
  records: Store;
  /** the same system of record, for its tables: passkeys (0005_passkeys.sql) */
  db: Queryable;
  /** seals TOTP secrets at rest (KEYWAY_KEK_FILE), as PAS's signing keys and PAC's SAS keys */
  kek: Keyring;
  /** hot, expiring state: verification failure counters */
  store: Store;
  /** where it appends its audit stream "idp": its database, as its own role */
  auditDb: AuditDb;
  /** verifies the operator access token that must accompany a change to an operator account (internal-changes.ts) */
  operatorProof?: BearerVerifier;
  /** the vendor tenant, whose users are operators (default VENDOR_TENANT) */
  operatorTenant?: string;
  logger: Logger;
}

export interface IdpOptions {
  /** login throttling and scrypt bounds (default DEFAULT_VERIFICATION_LIMITS) */
  verification?: Partial<VerificationLimits>;
  /** the WebAuthn relying party (PAS's public origin); unset: passkeys are not offered */
  relyingParty?: RelyingParty;
}

export type IdpApp = Express & { close(): Promise<void> };

/** The IdP only verifies credentials; it never mints tokens. */
export function createApp(deps: IdpDeps, options: IdpOptions = {}): IdpApp {
  const app = createBaseApp({
    service: 'idp',
    logger: deps.logger,
    readiness: [
      { name: 'database', check: () => deps.records.ping() },
      { name: 'store', check: () => deps.store.ping() },
    ],
    openapi: idpApi,
  });
  const credentials = credentialRepository(deps.records);
  const clientKeys = clientKeyRepository(deps.records);
  // One idp stream: failed verifications (throttled per account, aggregated) and credential changes (issue 9).
  const audit = createAuditLog({ db: deps.auditDb, store: deps.store, service: 'idp', logger: deps.logger });
  const guard = verificationGuard(deps.store, audit, deps.logger, { ...DEFAULT_VERIFICATION_LIMITS, ...options.verification });
  // the issuer name authenticator apps show next to the account
  const factors = secondFactors(deps.records, deps.kek, { issuer: 'Keyway' });
  const check = secondFactorCheck(factors, guard, audit);
  // A passkey may be added only by someone who just proved every factor the account has (enrolment window).
  const enrolment = enrolmentWindows(deps.store);
  app.use(passwordRoutes(credentials, guard, check, enrolment.open));
  app.use(secondFactorRoutes({ credentials, guard, factors, check, audit, verified: enrolment.open }));
  app.use(assertionRoutes(credentials, clientKeys, guard));
  app.use(sshKeyRoutes(credentials, clientKeys, guard));
  const changes = internalChanges({ audit, operatorTenant: deps.operatorTenant ?? VENDOR_TENANT, operatorProof: deps.operatorProof });
  const passkeys = passkeyRepository(deps.db);
  app.use(credentialRoutes(credentials, clientKeys, changes, factors, passkeys));
  app.use(passkeyRoutes({ credentials, passkeys, challenges: passkeyChallenges(deps.store), enrolment, guard, changes, relyingParty: options.relyingParty }));
  app.use(clientKeyRoutes(credentials, clientKeys, changes));
  return Object.assign(finishApp(app, deps.logger), { close: () => guard.close() });
}
