import type { Express } from 'express';
import { createBaseApp, finishApp, type Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import { credentialRepository } from './credentials/repository.ts';
import { credentialRoutes } from './routes/credentials.ts';
import { passwordRoutes } from './routes/password.ts';

export interface IdpDeps {
  store: Store;
  logger: Logger;
}

/** The IdP only verifies credentials; it never mints tokens. */
export function createApp(deps: IdpDeps): Express {
  const app = createBaseApp({ service: 'idp', logger: deps.logger, readiness: [{ name: 'store', check: () => deps.store.ping() }] });
  const credentials = credentialRepository(deps.store);
  app.use(passwordRoutes(credentials));
  app.use(credentialRoutes(credentials));
  return finishApp(app, deps.logger);
}
