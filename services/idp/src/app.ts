import type { Express } from 'express';
import { idpApi, VENDOR_TENANT } from '@keyway/contracts';
import { createAuditLog } from '@keyway/audit';
import { createBaseApp, finishApp, type BearerVerifier, type Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import { clientKeyRepository } from './credentials/client-keys.ts';
import { internalChanges } from './credentials/internal-changes.ts';
import { credentialRepository } from './credentials/repository.ts';
import { assertionRoutes } from './routes/assertion.ts';
import { clientKeyRoutes } from './routes/client-keys.ts';
import { credentialRoutes } from './routes/credentials.ts';
import { passwordRoutes } from './routes/password.ts';

export interface IdpDeps {
  store: Store;
  /** the audit keyspace every service shares; the IdP appends credential changes to stream "idp" */
  auditStore: Store;
  /** verifies the operator access token that must accompany a change to an operator account (internal-changes.ts) */
  operatorProof?: BearerVerifier;
  /** the vendor tenant, whose users are operators (default VENDOR_TENANT) */
  operatorTenant?: string;
  logger: Logger;
}

/** The IdP only verifies credentials; it never mints tokens. */
export function createApp(deps: IdpDeps): Express {
  const app = createBaseApp({ service: 'idp', logger: deps.logger, readiness: [{ name: 'store', check: () => deps.store.ping() }], openapi: idpApi });
  const credentials = credentialRepository(deps.store);
  const clientKeys = clientKeyRepository(deps.store);
  app.use(passwordRoutes(credentials));
  app.use(assertionRoutes(credentials, clientKeys));
  const changes = internalChanges({
    audit: createAuditLog({ store: deps.auditStore, service: 'idp', logger: deps.logger }),
    operatorTenant: deps.operatorTenant ?? VENDOR_TENANT,
    operatorProof: deps.operatorProof,
  });
  app.use(credentialRoutes(credentials, clientKeys, changes));
  app.use(clientKeyRoutes(credentials, clientKeys, changes));
  return finishApp(app, deps.logger);
}
