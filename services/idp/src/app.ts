import type { Express } from 'express';
import { idpApi } from '@keyway/contracts';
import { createBaseApp, finishApp, type Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import { clientKeyRepository } from './credentials/client-keys.ts';
import { credentialRepository } from './credentials/repository.ts';
import { assertionRoutes } from './routes/assertion.ts';
import { clientKeyRoutes } from './routes/client-keys.ts';
import { credentialRoutes } from './routes/credentials.ts';
import { passwordRoutes } from './routes/password.ts';

export interface IdpDeps {
  store: Store;
  logger: Logger;
}

/** The IdP only verifies credentials; it never mints tokens. */
export function createApp(deps: IdpDeps): Express {
  const app = createBaseApp({ service: 'idp', logger: deps.logger, readiness: [{ name: 'store', check: () => deps.store.ping() }], openapi: idpApi });
  const credentials = credentialRepository(deps.store);
  const clientKeys = clientKeyRepository(deps.store);
  app.use(passwordRoutes(credentials));
  app.use(assertionRoutes(credentials, clientKeys));
  app.use(credentialRoutes(credentials, clientKeys));
  app.use(clientKeyRoutes(credentials, clientKeys));
  return finishApp(app, deps.logger);
}
