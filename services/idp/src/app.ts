import type { Express } from 'express';
import { idpApi } from '@keyway/contracts';
import { createAuditLog } from '@keyway/audit';
import { createBaseApp, finishApp, type Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import { clientKeyRepository } from './credentials/client-keys.ts';
import { credentialRepository } from './credentials/repository.ts';
import { DEFAULT_VERIFICATION_LIMITS, verificationGuard, type VerificationLimits } from './credentials/verification-guard.ts';
import { assertionRoutes } from './routes/assertion.ts';
import { clientKeyRoutes } from './routes/client-keys.ts';
import { credentialRoutes } from './routes/credentials.ts';
import { passwordRoutes } from './routes/password.ts';

export interface IdpDeps {
  store: Store;
  /** the audit keyspace every service shares (prefix `${STORE_PREFIX}:audit:`); the IdP appends to stream "idp" */
  auditStore: Store;
  logger: Logger;
}

export interface IdpOptions {
  /** login throttling and scrypt bounds (default DEFAULT_VERIFICATION_LIMITS) */
  verification?: Partial<VerificationLimits>;
}

export type IdpApp = Express & { close(): Promise<void> };

/** The IdP only verifies credentials; it never mints tokens. */
export function createApp(deps: IdpDeps, options: IdpOptions = {}): IdpApp {
  const app = createBaseApp({ service: 'idp', logger: deps.logger, readiness: [{ name: 'store', check: () => deps.store.ping() }], openapi: idpApi });
  const credentials = credentialRepository(deps.store);
  const clientKeys = clientKeyRepository(deps.store);
  // Failed verifications: throttled per account and recorded, aggregated (issue 9).
  const audit = createAuditLog({ store: deps.auditStore, service: 'idp', logger: deps.logger });
  const guard = verificationGuard(deps.store, audit, deps.logger, { ...DEFAULT_VERIFICATION_LIMITS, ...options.verification });
  app.use(passwordRoutes(credentials, guard));
  app.use(assertionRoutes(credentials, clientKeys, guard));
  app.use(credentialRoutes(credentials, clientKeys));
  app.use(clientKeyRoutes(credentials, clientKeys));
  return Object.assign(finishApp(app, deps.logger), { close: () => guard.close() });
}
