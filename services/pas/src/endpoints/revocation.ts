import { Router } from 'express';
import { z } from 'zod';
import { parseInput, requireContentType } from '@keyway/kit';
import type { GrantContext } from '../grants/context.ts';
import { verifyOwnToken } from '../tokens/own-tokens.ts';
import { noStore } from './token.ts';

const RevocationRequest = z.object({ token: z.string().min(1).max(8192), token_type_hint: z.string().max(64).optional() });

/**
 * POST /oauth2/revoke (RFC 7009). Revoking either token of a pair revokes its whole family. The
 * answer is 200 whether or not the token was valid (§2.2): an invalid token has nothing to revoke.
 */
export function revocationEndpoint(context: GrantContext): Router {
  const router = Router();
  router.post('/oauth2/revoke', noStore, requireContentType('application/x-www-form-urlencoded'), async (req, res) => {
    const { token, token_type_hint } = parseInput(RevocationRequest, req.body, 'body');
    const verified = await verifyOwnToken(context, token, token_type_hint);
    const fid = verified?.claims.fid;
    if (fid && (await context.families.revoke(fid))) {
      req.log.info('refresh_family.revoked', { reason: 'client_revocation', fid, jti: verified.claims.jti, sub: verified.claims.sub, tenant: verified.claims.tid });
    }
    res.status(200).end();
  });
  return router;
}
