import { readFileSync } from 'node:fs';
import { Router, type Response } from 'express';
import { ApiError, pacClient, type ClientOptions, type PasClient } from '@keyway/clients';
import { entitlementRoutes, OPERATOR_SCOPE, SasKeyRotation, TokenResponse, type TenantKeyName } from '@keyway/contracts';
import { bindRoute, InvalidRequest, NotFound, OAuthError, requireBodyType, requireOperator, shapeResponse, TemporarilyUnavailable, type BearerVerifier } from '@keyway/kit';

/**
 * The operator console (README "Console"): static files under /console/ and the few same-origin
 * endpoints the page needs besides the admin API:
 * - POST /console/session (email, password) → PAS password grant with scope=operator, so the page
 *   never talks to another origin and PAS needs no CORS;
 * - POST /console/session/refresh and /console/session/revoke → PAS refresh and RFC 7009 revocation;
 * - POST /console/tenants/:tenant/sas-keys/rotate → PAC's admin API, called with the operator's own
 *   access token (its "aud" names PAC), so PAC decides as if the operator had called it.
 * The page keeps the tokens in memory only; every admin call carries the access token itself.
 */
export interface ConsoleDeps {
  /** PAS's token endpoint */
  pas: Pick<PasClient, 'password' | 'refresh' | 'revoke'>;
  /** PAC's SAS-key rotation with the operator's access token; unset = the console offers no rotation (404) */
  rotateSasKey?: (tenant: string, key: TenantKeyName, accessToken: string) => Promise<SasKeyRotation>;
}

/** PAC's admin rotation, sending the caller's bearer token (one connection pool for every operator). */
export function pacKeyRotation(options: Omit<ClientOptions, 'accessToken'>): NonNullable<ConsoleDeps['rotateSasKey']> {
  const pac = pacClient(options);
  return (tenant, key, accessToken) => pac.rotateSasKey(tenant, key, { accessToken });
}

/**
 * CSP Level 3: only this origin's own files, no inline script or style, no plugins, no framing
 * (frame-ancestors and X-Frame-Options for older browsers), forms post here only.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const FILES = {
  'index.html': 'text/html; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
} as const;

/** The grant's answer, which the page alone may see: never cached (RFC 6749 §5.1). */
function sendTokens(res: Response, tokens: TokenResponse): void {
  res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' }).json(shapeResponse(TokenResponse, tokens));
}

/** PAS's and PAC's refusals are the operator's to read (wrong password, no operator role); their outages are ours. */
function passOn(err: unknown): never {
  // a throttled sign-in keeps its Retry-After (PAS's login throttle, issue 9)
  if (err instanceof ApiError && err.status >= 400 && err.status < 500) throw new OAuthError(err.status, err.code, err.description, undefined, err.retryAfter ? { 'Retry-After': err.retryAfter } : {});
  throw new TemporarilyUnavailable('PAS or PAC cannot be reached, retry later', String(err), { 'Retry-After': '5' });
}

export function consoleRoutes(deps: ConsoleDeps, verifyOperator: BearerVerifier): Router {
  const router = Router({ strict: true });
  const files = Object.fromEntries(Object.keys(FILES).map((name) => [name, readFileSync(new URL(`./${name}`, import.meta.url))])) as Record<keyof typeof FILES, Buffer>;
  const serve =
    (name: keyof typeof FILES) =>
    (_req: unknown, res: Response) => {
      res
        .set({
          'Content-Type': FILES[name],
          'Content-Security-Policy': CONTENT_SECURITY_POLICY,
          'X-Frame-Options': 'DENY',
          'X-Content-Type-Options': 'nosniff',
          'Referrer-Policy': 'no-referrer',
          'Cache-Control': 'no-cache',
        })
        .send(files[name]);
    };
  // The page names its files relative to /console/, so the bare path redirects there.
  bindRoute(router, entitlementRoutes.consoleRedirect, (_req, res) => res.redirect(301, entitlementRoutes.consolePage.path));
  bindRoute(router, entitlementRoutes.consolePage, serve('index.html'));
  bindRoute(router, entitlementRoutes.consoleScript, serve('console.js'));
  bindRoute(router, entitlementRoutes.consoleStyle, serve('console.css'));

  // JSON only: a cross-site form cannot send it without a CORS preflight, which this origin never grants.
  bindRoute(router, entitlementRoutes.consoleSignIn, requireBodyType(entitlementRoutes.consoleSignIn), async (req, res, input) => {
    const { email, password } = input.body();
    // PAS throttles sign-ins per account and source: the source is the operator's address, not the console's.
    sendTokens(res, await deps.pas.password(email, password, OPERATOR_SCOPE, req.ip ?? req.socket.remoteAddress).catch(passOn));
  });
  bindRoute(router, entitlementRoutes.consoleRefresh, requireBodyType(entitlementRoutes.consoleRefresh), async (_req, res, input) => {
    const { refresh_token } = input.body();
    sendTokens(res, await deps.pas.refresh(refresh_token).catch(passOn));
  });
  // Sign-out: revoking the refresh token revokes its family, the page's access token included.
  bindRoute(router, entitlementRoutes.consoleRevoke, requireBodyType(entitlementRoutes.consoleRevoke), async (_req, res, input) => {
    const { refresh_token } = input.body();
    await deps.pas.revoke(refresh_token, 'refresh_token').catch(passOn);
    res.status(204).end();
  });

  const { rotateSasKey } = deps;
  const rotate = entitlementRoutes.consoleRotateSasKey;
  bindRoute(router, rotate, requireOperator({ verify: verifyOperator }), requireBodyType(rotate), async (req, res, input) => {
    if (!rotateSasKey) throw new NotFound('SAS key rotation is not configured for the console (PAC_URL)');
    const { tenant } = input.params();
    const { key } = input.body();
    // requireOperator has checked this bearer token; a caller with the operator certificate has no token to
    // forward and calls PAC directly.
    const token = req.get('authorization')?.replace(/^Bearer +/i, '');
    if (!token) throw new InvalidRequest('the console forwards an operator access token; with the operator certificate, call PAC itself');
    res.json(shapeResponse(SasKeyRotation, await rotateSasKey(tenant, key, token).catch(passOn)));
  });
  return router;
}
