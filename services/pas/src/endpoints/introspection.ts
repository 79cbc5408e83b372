import { Router } from 'express';
import { Introspection, pasRoutes, RELEASES_SCOPE, tokenReleaseRights } from '@keyway/contracts';
import { bindRoute, requireBodyType, shapeResponse } from '@keyway/kit';
import type { GrantContext } from '../grants/context.ts';
import { isActive, verifyOwnToken } from '../tokens/own-tokens.ts';
import { noStore } from './token.ts';

/**
 * POST /oauth2/introspect (RFC 7662) for resource servers (PAC, and the
 * entitlement service checking operator tokens at its admin API), authenticated by their client
 * certificate (§2.1). What "active" means is isActive's (tokens/own-tokens.ts); when the entitlement
 * service cannot answer, 503, never "active".
 */
export function introspectionEndpoint(context: GrantContext): Router {
  const router = Router();
  bindRoute(router, pasRoutes.introspect, noStore, requireBodyType(pasRoutes.introspect), async (_req, res, input) => {
    const { token, token_type_hint } = input.body();
    const verified = await verifyOwnToken(context, token, token_type_hint);
    const active = verified !== undefined && (await isActive(context, verified));
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
