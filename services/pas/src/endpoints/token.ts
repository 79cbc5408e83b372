import { Router, type RequestHandler } from 'express';
import { GRANT_TYPES, TokenRequest, TokenResponse } from '@keyway/contracts';
import { InvalidRequest, parseInput, requireContentType, shapeResponse, UnsupportedGrantType } from '@keyway/kit';
import { grants } from '../grants/index.ts';
import type { GrantContext } from '../grants/context.ts';

/** RFC 6749 §5.1: token responses are never cached. */
export const noStore: RequestHandler = (_req, res, next) => {
  res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
  next();
};

/** RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once." */
const rejectDuplicateParams: RequestHandler = (req, _res, next) => {
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

export function tokenEndpoint(context: GrantContext): Router {
  const router = Router();
  router.post('/oauth2/token', noStore, requireContentType('application/x-www-form-urlencoded'), rejectDuplicateParams, checkGrantType, async (req, res) => {
    const params = parseInput(TokenRequest, req.body, 'body');
    const grant = grants[params.grant_type] as { handler: (p: typeof params, c: GrantContext, r: typeof req) => Promise<TokenResponse> };
    res.json(shapeResponse(TokenResponse, await grant.handler(params, context, req)));
  });
  return router;
}
