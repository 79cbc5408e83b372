import { Router } from 'express';
import { audited, requestFields } from '@keyway/audit';
import { pasRoutes } from '@keyway/contracts';
import { bindRoute, requireBodyType } from '@keyway/kit';
import type { GrantContext } from '../grants/context.ts';
import { verifyOwnToken } from '../tokens/own-tokens.ts';
import { noStore } from './token.ts';

/**
 * POST /oauth2/revoke (RFC 7009). Revoking either token of a pair revokes its whole family. The
 * answer is 200 whether or not the token was valid (§2.2): an invalid token has nothing to revoke,
 * and nothing to record either (the trail holds token ids, and an invalid token has none we trust).
 * A valid one is recorded as token.revoked, plus refresh_family.revoked when its family was live;
 * if the trail cannot take them the answer is server_error, and the client retries (revoking is idempotent).
 */
export function revocationEndpoint(context: GrantContext): Router {
  const router = Router();
  bindRoute(router, pasRoutes.revoke, noStore, requireBodyType(pasRoutes.revoke), async (req, res, input) => {
    const { token, token_type_hint } = input.body();
    const verified = await verifyOwnToken(context, token, token_type_hint);
    if (verified) {
      const { claims } = verified;
      const fid = claims.fid;
      const fields = {
        ...requestFields(req),
        tenant: claims.tid,
        subject: claims.sub,
        clientId: claims.client_id,
        tokenId: claims.jti,
        reason: 'client_revocation',
        detail: { type: verified.type, ...(fid && { family: fid }) },
      };
      // a revocation that fails is the client's to retry (idempotent): only what was revoked is recorded
      await audited(context, { action: 'token.revoked', fields, refusal: false }, async (audit) => {
        if (fid === undefined || !(await context.families.revoke(fid, 'client_revocation'))) return;
        req.log.info('refresh_family.revoked', { reason: 'client_revocation', fid, jti: claims.jti, sub: claims.sub, tenant: claims.tid });
        context.metrics.tokensRevoked.add(1, { tenant: claims.tid, reason: 'client_revocation' });
        audit.also({ action: 'refresh_family.revoked', outcome: 'success', reason: 'client_revocation' });
      });
    }
    res.status(200).end();
  });
  return router;
}
