import { Router, type RequestHandler } from 'express';
import { audited, mergeFields, requestFields } from '@keyway/audit';
import { webSessionRoutes } from '@keyway/contracts';
import { AccessDenied, bindRoute, TemporarilyUnavailable } from '@keyway/kit';
import type { SessionContext } from '../browser-session.ts';
import { noStore } from './callback.ts';

/**
 * Logout is a state change another site must not trigger (a forced logout is a nuisance, and a
 * forced logout-then-login a fixation path), and SameSite=Lax does not stop another origin of the
 * same site. The browser says where the POST comes from: `Sec-Fetch-Site` (Fetch Metadata, which no
 * page can set) must be `same-origin`; a browser without it must send `Origin` equal to the site's.
 * `Origin: null` with `same-origin` is this site's own form under `Referrer-Policy: no-referrer`
 * (Fetch §3.2.5 serializes the origin as null then); an `Origin` naming another origin is refused
 * whatever else the request says.
 */
const sameOrigin =
  (origin: string): RequestHandler =>
  (req, _res, next) => {
    const from = req.get('origin');
    const site = req.get('sec-fetch-site');
    const named = from !== undefined && from !== 'null';
    const allowed = (site === 'same-origin' && (!named || from === origin)) || (site === undefined && from === origin);
    if (allowed) return next();
    next(new AccessDenied('sign out from this site’s own page', `cross-site logout: Origin ${from?.slice(0, 200) ?? '(none)'}, Sec-Fetch-Site ${site?.slice(0, 30) ?? '(none)'}`));
  };

/**
 * POST /logout: the refresh token is revoked at PAS first (RFC 7009; its family, so the access token
 * too), then the session is deleted and the cookie cleared. PAS not answering leaves the session as
 * it is and answers 503: the person tries again rather than leave believing a still-live token dead.
 */
export function logoutEndpoint(context: SessionContext): Router {
  const router = Router();
  const { settings, sessions, server, cookies } = context;

  bindRoute(router, webSessionRoutes.logout, noStore, sameOrigin(settings.origin), async (req, res) => {
    const id = cookies.session(req);
    const session = id === undefined ? undefined : await sessions.load(id);
    if (id !== undefined && session) {
      const end = async () => {
        await server.revoke(session.tokens.refreshToken).catch((err: unknown) => {
          throw new TemporarilyUnavailable('signing out needs the sign-in service, which is unavailable: try again', `revocation at PAS: ${(err as Error).message}`, { 'Retry-After': '5' });
        });
        await sessions.remove(id);
      };
      const { sub, tid, jti } = session.tokens.claims;
      const fields = mergeFields(requestFields(req), { clientId: settings.clientId, subject: sub, tenant: tid, tokenId: jti, reason: 'logout' });
      if (context.audit) await audited({ audit: context.audit }, { action: 'session.ended', fields, refusal: false }, end);
      else await end();
      req.log?.info('session.ended', { reason: 'logout', sub, tenant: tid });
    }
    cookies.clearSession(res);
    res.redirect(303, '/');
  });
  return router;
}
