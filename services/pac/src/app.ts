import type { Express } from 'express';
import { createBaseApp, finishApp, type Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import type { JWTVerifyGetKey } from '@keyway/tokens';
import { sasEndpoint, type SasEndpointOptions } from './endpoints/sas.ts';
import { tenantKeysEndpoint } from './endpoints/tenant-keys.ts';
import { issuedRegistry } from './issued/registry.ts';
import { tenantKeys } from './keys/tenant-keys.ts';

export type PacOptions = SasEndpointOptions;

export interface PacDeps {
  store: Store;
  /** PAS's published keys (remoteKeySet over the PAS client) */
  pasKeys: JWTVerifyGetKey;
  logger: Logger;
}

/** Access control: the only service that mints SAS keys. */
export function createApp(options: PacOptions, deps: PacDeps): Express {
  const app = createBaseApp({ service: 'pac', logger: deps.logger, readiness: [{ name: 'store', check: () => deps.store.ping() }] });
  const keys = tenantKeys(deps.store);
  app.use(sasEndpoint(options, { pasKeys: deps.pasKeys, keys, issued: issuedRegistry(deps.store) }));
  app.use(tenantKeysEndpoint(keys));
  return finishApp(app, deps.logger);
}
