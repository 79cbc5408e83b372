import type { Express } from 'express';
import type { IdpClient } from '@keyway/clients';
import { createBaseApp, finishApp, requireService, type Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import { policyRepository } from './policy/repository.ts';
import { tenantRoutes } from './routes/admin/tenants.ts';
import { authorizeRoutes } from './routes/authorize.ts';

export interface EntitlementDeps {
  store: Store;
  idp: IdpClient;
  logger: Logger;
}

export function createApp(deps: EntitlementDeps): Express {
  const app = createBaseApp({ service: 'entitlement', logger: deps.logger, readiness: [{ name: 'store', check: () => deps.store.ping() }] });
  const policy = policyRepository(deps.store);
  app.use(authorizeRoutes(policy));
  // Operators reach the admin API with the operator client certificate.
  app.use('/v1/tenants', requireService('operator'));
  app.use(tenantRoutes(policy, deps.idp));
  return finishApp(app, deps.logger);
}
