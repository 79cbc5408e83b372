import { readFileSync } from 'node:fs';
import { Router, type Request, type Response } from 'express';
import { ApiError, type AuditClient, type PacClient, type PasClient, type ReleasesClient } from '@keyway/clients';
import { AuditPage, DownloadReport, entitlementRoutes, OPERATOR_SCOPE, SasKeyRotation, TokenResponse } from '@keyway/contracts';
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
  /** PAC's admin API, without a certificate (each call carries its operator's token); unset = the console offers no rotation (404) */
  pac?: Pick<PacClient, 'rotateSasKey'>;
  /** the audit service's query API, the same way; unset = the console shows no audit events (404) */
  audit?: Pick<AuditClient, 'events'>;
  /** the releases service's download report, the same way; unset = the console shows no downloads (404) */
  releases?: Pick<ReleasesClient, 'downloadReport'>;
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

/** PAS's, PAC's, the audit and the releases service's refusals are the operator's to read (wrong password, no operator role); their outages are ours. */
function passOn(err: unknown): never {
  // a throttled sign-in keeps its Retry-After (PAS's login throttle, issue 9)
  if (err instanceof ApiError && err.status >= 400 && err.status < 500) throw new OAuthError(err.status, err.code, err.description, undefined, err.retryAfter ? { 'Retry-After': err.retryAfter } : {});
  throw new TemporarilyUnavailable('PAS, PAC, the audit or the releases service cannot be reached, retry later', String(err), { 'Retry-After': '5' });
}

/**
 * The operator's access token, to forward: requireOperator has checked it. A caller with the operator
 * certificate has no token to forward and calls PAC or the audit service itself.
 */
function forwardedToken(req: Request): string {
  const token = req.get('authorization')?.replace(/^Bearer +/i, '');
  if (!token) throw new InvalidRequest('the console forwards an operator access token; with the operator certificate, call PAC or the audit service itself');
  return token;
}

export function consoleRoutes(deps: ConsoleDeps, verifyOperator: BearerVerifier): Router {
  const router = Router({ strict: true });
  const files = Object.fromEntries(Object.keys(FILES).map((name) => [name, readFileSync(new URL(`./${name}`, import.meta.url))])) as Record<keyof typeof FILES, Buffer>;
  const serve = (name: keyof typeof FILES) => (_req: unknown, res: Response) => {
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
    const { email, password, otp } = input.body();
    // PAS throttles sign-ins per account and source: the source is the operator's address, not the console's.
    sendTokens(res, await deps.pas.password(email, password, OPERATOR_SCOPE, req.ip ?? req.socket.remoteAddress, otp).catch(passOn));
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

  const { pac, audit, releases } = deps;
  const operator = requireOperator({ verify: verifyOperator });
  const rotate = entitlementRoutes.consoleRotateSasKey;
  bindRoute(router, rotate, operator, requireBodyType(rotate), async (req, res, input) => {
    if (!pac) throw new NotFound('SAS key rotation is not configured for the console (PAC_URL)');
    const { tenant } = input.params();
    const { key } = input.body();
    res.json(shapeResponse(SasKeyRotation, await pac.rotateSasKey(tenant, key, { accessToken: forwardedToken(req) }).catch(passOn)));
  });
  bindRoute(router, entitlementRoutes.consoleAuditEvents, operator, async (req, res, input) => {
    if (!audit) throw new NotFound('the audit view is not configured for the console (AUDIT_URL)');
    const { tenant } = input.params();
    const { limit } = input.query();
    const page = await audit.events({ tenant, limit }, { accessToken: forwardedToken(req) }).catch(passOn);
    res.set('Cache-Control', 'no-store').json(shapeResponse(AuditPage, page));
  });
  bindRoute(router, entitlementRoutes.consoleDownloads, operator, async (req, res, input) => {
    if (!releases) throw new NotFound('the downloads view is not configured for the console (RELEASES_URL)');
    const { tenant } = input.params();
    const report = await releases.downloadReport({ tenant }, { accessToken: forwardedToken(req) }).catch(passOn);
    res.set('Cache-Control', 'no-store').json(shapeResponse(DownloadReport, report));
  });
  return router;
}
