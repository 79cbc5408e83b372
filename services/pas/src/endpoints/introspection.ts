import { Router } from 'express';
import { Introspection, pasRoutes, RELEASES_SCOPE, tokenReleaseRights } from '@keyway/contracts';
import { AccessDenied, bindRoute, requireBodyType, shapeResponse } from '@keyway/kit';
import { authorize, grantedAccess } from '../grants/authorize.ts';
import type { GrantContext } from '../grants/context.ts';
import { verifyOwnToken } from '../tokens/own-tokens.ts';
import { noStore } from './token.ts';

/**
 * POST /oauth2/introspect (RFC 7662) for resource servers (PAC, and the
 * entitlement service checking operator tokens at its admin API), authenticated by their client
 * certificate (§2.1). A refresh token is active only while it is its family's current one; an access
 * token only while its family lives. In strict mode also only while the entitlement service still
 * grants its holder the token's access (issue 11): a removal holds here even before its change event
 * has revoked the family; when it cannot answer, 503, never "active". A token bound to a revoked DPoP
 * key (RFC 9449 `cnf.jkt`) is inactive.
 */
export function introspectionEndpoint(context: GrantContext): Router {
  const router = Router();
  bindRoute(router, pasRoutes.introspect, noStore, requireBodyType(pasRoutes.introspect), async (_req, res, input) => {
    const { token, token_type_hint } = input.body();
    const verified = await verifyOwnToken(context, token, token_type_hint);
    let active = false;
    if (verified?.claims.fid) {
      const current = await context.families.current(verified.claims.fid);
      active = verified.type === 'refresh_token' ? current === verified.claims.jti : current !== null;
    }
    // a token bound to a revoked DPoP key is inactive even if its family outlived the revocation (a login in flight meanwhile)
    const jkt = verified?.claims.cnf?.jkt;
    if (active && jkt !== undefined && (await context.dpop?.revoked.has(jkt))) active = false;
    if (verified && active && context.strict) {
      const { sub, tid, scope } = verified.claims;
      active = await authorize(context.entitlement, sub, tid, grantedAccess(scope)).then(
        () => true,
        (err: unknown) => {
          if (err instanceof AccessDenied) return false;
          throw err;
        },
      );
    }
    if (!verified || !active) {
      res.json({ active: false });
      return;
    }
    const { claims } = verified;
    res.json(
      shapeResponse(Introspection, {
        active: true,
        token_type: verified.type,
        scope: claims.scope,
        client_id: claims.client_id,
        sub: claims.sub,
        tid: claims.tid,
        roles: claims.roles,
        rights: claims.rights,
        releases: claims.scope === RELEASES_SCOPE ? tokenReleaseRights(claims) : undefined,
        fid: claims.fid,
        jti: claims.jti,
        iss: claims.iss,
        aud: claims.aud,
        iat: claims.iat,
        nbf: claims.nbf,
        exp: claims.exp,
        // RFC 9449 §6.2: a bound token's key, so a resource server (PAC) holds the presenter to it
        cnf: claims.cnf,
      }),
    );
  });
  return router;
}
