import { Router, type RequestHandler } from 'express';
import { attributes } from '@keyway/audit';
import { GRANT_TYPES, pasRoutes, TokenRequest, TokenResponse } from '@keyway/contracts';
import { bindRoute, InvalidRequest, requireBodyType, shapeResponse, UnsupportedGrantType } from '@keyway/kit';
import { grantAudit, type GrantAudit } from '../grants/audit.ts';
import type { Grant, GrantContext } from '../grants/context.ts';
import { grants } from '../grants/index.ts';
import { sourceOf } from '../throttling/login-throttle.ts';

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
  bindRoute(router, pasRoutes.token, noStore, requireBodyType(pasRoutes.token), rejectDuplicateParams, checkGrantType, async (req, res, input) => {
    const grantType = (req.body as { grant_type: TokenRequest['grant_type'] }).grant_type;
    const source = sourceOf(req);
    const trail = grantAudit(context.audit, req, grantType, { gate: context.noise, source });
    // the console's operator, whose address the console forwards (throttling/login-throttle.ts)
    if (source !== (req.ip ?? req.socket.remoteAddress)) trail.audit.note({ detail: { client_address: source } });
    const grant = grants[grantType] as Pick<Grant<typeof grantType>, 'issued'> & {
      handler: (p: TokenRequest, c: GrantContext, r: typeof req, a: GrantAudit) => Promise<TokenResponse>;
    };
    const counted = (outcome: string) => {
      const tenant = trail.audit.fields.tenant;
      if (grant.issued === 'token.refreshed') context.metrics.tokensRefreshed.add(1, attributes({ tenant, outcome }));
      else context.metrics.tokensIssued.add(1, attributes({ tenant, grant_type: grantType, outcome }));
    };
    let pair: TokenResponse;
    try {
      // Issue 9: a source past its limit of unauthenticated refusals is refused before any work (and any audit write).
      await context.noise.admit(source);
      const params = input.body();
      pair = await grant.handler(params, context, req, trail.audit);
    } catch (err) {
      const refused = await trail.refused(err);
      counted(refused.outcome);
      if (refused.outcome === 'denied') context.metrics.denials.add(1, attributes({ service: 'pas', action: refused.action, tenant: trail.audit.fields.tenant, reason: refused.reason }));
      throw err;
    }
    // Style rule 10: the pair is answered only once the trail holds its issuance; when the append fails
    // this throws server_error and the tokens are never seen (the family they started or rotated is
    // then unusable, so the client logs in again once the trail is back).
    try {
      await trail.succeeded(grant.issued);
    } catch (err) {
      counted('failure');
      throw err;
    }
    counted('success');
    res.json(shapeResponse(TokenResponse, pair));
  });
  return router;
}
