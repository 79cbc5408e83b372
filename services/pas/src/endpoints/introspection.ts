import { Router } from 'express';
import { Introspection, pasRoutes } from '@keyway/contracts';
import { bindRoute, requireBodyType, shapeResponse } from '@keyway/kit';
import type { GrantContext } from '../grants/context.ts';
import { verifyOwnToken } from '../tokens/own-tokens.ts';
import { noStore } from './token.ts';

/**
 * POST /oauth2/introspect (RFC 7662) for resource servers (PAC, and the
 * entitlement service checking operator tokens at its admin API), authenticated by their client
 * certificate (§2.1). A refresh token is active only while it is its family's current one; an access
 * token only while its family lives.
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
        fid: claims.fid,
        jti: claims.jti,
        iss: claims.iss,
        aud: claims.aud,
        iat: claims.iat,
        nbf: claims.nbf,
        exp: claims.exp,
      }),
    );
  });
  return router;
}
