import { Router, type RequestHandler } from 'express';
import { audited, mergeFields, requestFields } from '@keyway/audit';
import { ApiError } from '@keyway/clients';
import { webSessionRoutes } from '@keyway/contracts';
import { AccessDenied, bindRoute, InvalidRequest } from '@keyway/kit';
import type { SessionContext } from '../browser-session.ts';

const START_AGAIN = 'this sign-in is not valid or has expired: open the link again to sign in';

export const noStore: RequestHandler = (_req, res, next) => {
  res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
  next();
};

/**
 * GET /oauth2/callback (RFC 6749 §4.1.2): the state this browser opened (single use, RFC 6749 §10.12),
 * PAS as the issuer (RFC 9207 §2.4, mix-up defence), then the code redeemed with its verifier (RFC
 * 7636 §4.5) and a new session under a new id (no fixation).
 */
export function callbackEndpoint(context: SessionContext): Router {
  const router = Router();
  const { settings, pending, sessions, server, cookies } = context;

  bindRoute(router, webSessionRoutes.callback, noStore, async (req, res, input) => {
    const answer = input.query();
    if (answer.state === undefined) throw new InvalidRequest(START_AGAIN, 'the callback has no state');
    // spent now, whatever follows: a callback is never accepted twice
    const request = await pending.take(answer.state, cookies.binding(req));
    if (!request) throw new InvalidRequest(START_AGAIN, 'unknown, used or expired state, or one another browser opened');
    // RFC 9207 §2.4: PAS announces iss, so an answer without it, or naming another issuer, is refused
    if (answer.iss !== settings.issuer) throw new InvalidRequest(START_AGAIN, `iss ${answer.iss?.slice(0, 200) ?? '(none)'} is not the issuer`);
    if (answer.error === 'access_denied') throw new AccessDenied('your account may not use this site', answer.error_description);
    if (answer.error !== undefined) throw new InvalidRequest(START_AGAIN, `PAS answered ${answer.error.slice(0, 100)}: ${answer.error_description ?? ''}`);
    if (answer.code === undefined) throw new InvalidRequest(START_AGAIN, 'the callback has neither code nor error');
    const code = answer.code;

    const tokens = await server.redeem(code, request.verifier).catch((err: unknown) => {
      if (err instanceof ApiError && err.status < 500) throw new InvalidRequest(START_AGAIN, `PAS refused the code: ${err.code}`);
      throw err;
    });
    const { sub, tid, jti } = tokens.claims;
    const fields = mergeFields(requestFields(req), { clientId: settings.clientId, subject: sub, tenant: tid, tokenId: jti });
    const start = () => sessions.create(tokens);
    // recorded before the cookie leaves (fail closed): a session the trail cannot take is not handed out
    const session = context.audit ? await audited({ audit: context.audit }, { action: 'session.started', fields, refusal: false }, start) : await start();
    // a session this browser still had ends with the new one, its tokens revoked (RFC 7009) rather than left live at PAS
    const previousId = cookies.session(req);
    const previous = previousId === undefined ? undefined : await sessions.load(previousId);
    if (previousId !== undefined && previous) {
      await server.revoke(previous.tokens.refreshToken).catch((err: unknown) => req.log?.warn('the previous session’s tokens could not be revoked', { err }));
      await sessions.remove(previousId);
    }
    cookies.setSession(res, session.id);
    req.log?.info('session.started', { sub: session.record.sub, tenant: session.record.tid });
    res.redirect(303, request.returnTo);
  });
  return router;
}
