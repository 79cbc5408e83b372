import type { Express } from 'express';
import type { EntitlementClient, IdpClient } from '@keyway/clients';
import { createBaseApp, finishApp, telemetry, type Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import type { KeyRing, TokenSettings } from '@keyway/tokens';
import { discoveryEndpoint } from './endpoints/discovery.ts';
import { jwksEndpoint } from './endpoints/jwks.ts';
import { tokenEndpoint } from './endpoints/token.ts';
import { refreshFamilies } from './families/refresh-family.ts';

export interface PasOptions {
  settings: TokenSettings;
}

export interface PasDeps {
  store: Store;
  ring: KeyRing;
  idp: IdpClient;
  entitlement: EntitlementClient;
  logger: Logger;
}

/** The OAuth 2.0 authorization server: the only service that mints JWTs. */
export function createApp(options: PasOptions, deps: PasDeps): Express {
  const app = createBaseApp({ service: 'pas', logger: deps.logger, readiness: [{ name: 'store', check: () => deps.store.ping() }] });
  const context = {
    ring: deps.ring,
    settings: options.settings,
    idp: deps.idp,
    entitlement: deps.entitlement,
    families: refreshFamilies(deps.store),
    tokensIssued: telemetry('pas').counter('keyway.tokens.issued', 'access/refresh token pairs issued'),
  };
  app.use(tokenEndpoint(context));
  app.use(discoveryEndpoint(options.settings.issuer));
  app.use(jwksEndpoint(deps.ring));
  return finishApp(app, deps.logger);
}

export function tokenSettings(config: {
  PUBLIC_URL: string;
  ACCESS_AUDIENCE: string;
  ACCESS_TOKEN_TTL_SEC: number;
  REFRESH_TOKEN_TTL_SEC: number;
  CLOCK_TOLERANCE_SEC: number;
}): TokenSettings {
  return {
    issuer: config.PUBLIC_URL,
    accessAudience: config.ACCESS_AUDIENCE,
    refreshAudience: config.PUBLIC_URL,
    accessTtlSec: config.ACCESS_TOKEN_TTL_SEC,
    refreshTtlSec: config.REFRESH_TOKEN_TTL_SEC,
    clockToleranceSec: config.CLOCK_TOLERANCE_SEC,
  };
}
