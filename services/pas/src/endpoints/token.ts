import { Router, type RequestHandler } from 'express';
import { mergeFields, requestFields } from '@keyway/audit';
import { GRANT_TYPES, pasRoutes, type TokenRequest, TokenResponse } from '@keyway/contracts';
import { bindRoute, dpopGuardOnDemand, InvalidRequest, requireBodyType, shapeResponse, UnsupportedGrantType, type DpopGuardOptions } from '@keyway/kit';
import type { GrantContext } from '../grants/context.ts';
import { grants } from '../grants/index.ts';
import { grantTokens } from '../grants/token-request.ts';
import { sourceOf } from '../throttling/login-throttle.ts';

/** RFC 6749 §5.1: token responses are never cached. */
export const noStore: RequestHandler = (_req, res, next) => {
  res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
  next();
};

/** RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once." */
export const rejectDuplicateParams: RequestHandler = (req, _res, next) => {
  const repeated = Object.entries((req.body ?? {}) as Record<string, unknown>).find(([, v]) => Array.isArray(v));
  next(repeated ? new InvalidRequest(`parameter ${repeated[0]} is included more than once`) : undefined);
};

const checkGrantType: RequestHandler = (req, _res, next) => {
  const grantType = (req.body as Record<string, unknown> | undefined)?.grant_type;
  if (typeof grantType !== 'string' || grantType === '') return next(new InvalidRequest('grant_type is required'));
  if (!(GRANT_TYPES as readonly string[]).includes(grantType) || !(grantType in grants)) {
    return next(new UnsupportedGrantType(`grant_type ${grantType.slice(0, 64)} is not supported`));
  }
  next();
};

/**
 * POST /oauth2/token. `dpop`: RFC 9449 at PAS, proofs for the issuer's URL plus the path; every answer
 * carries a fresh DPoP-Nonce (RFC 9449 §8.2), so a client always holds one that is accepted.
 */
export function tokenEndpoint(context: GrantContext, dpop: Omit<DpopGuardOptions, 'resource'>): Router {
  const router = Router();
  const guard = dpopGuardOnDemand({ ...dpop, resource: false });
  const offerNonce: RequestHandler = (_req, res, next) => {
    guard().then((g) => {
      g.offerNonce(res);
      next();
    }, next);
  };
  bindRoute(router, pasRoutes.token, noStore, offerNonce, requireBodyType(pasRoutes.token), rejectDuplicateParams, checkGrantType, async (req, res, input) => {
    const grantType = (req.body as { grant_type: TokenRequest['grant_type'] }).grant_type;
    const source = sourceOf(req);
    // the console's operator, whose address the console forwards (throttling/login-throttle.ts)
    const forwarded = source !== (req.ip ?? req.socket.remoteAddress) ? { detail: { client_address: source } } : {};
    const origin = {
      fields: mergeFields(requestFields(req), forwarded),
      source,
      log: req.log,
      dpop: async (bound?: string) => (await guard()).check(req, { jkt: bound }).then((proof) => proof?.jkt),
    };
    const pair = await grantTokens(context, origin, grantType, input.body);
    res.json(shapeResponse(TokenResponse, pair));
  });
  return router;
}
