import { AccessDenied, InvalidGrant, InvalidScope } from '@keyway/kit';
import { intersectReleaseRights, intersectRights, tokenFeedRights, tokenReleaseRights } from '@keyway/contracts';
import { TokenError } from '@keyway/tokens';
import { verifyOwnRefreshToken } from '../tokens/own-tokens.ts';
import { authorize, grantedAccess, requestedAccess, withinGrant } from './authorize.ts';
import { Amr, type AuthenticationContext } from '@keyway/contracts';
import type { RefreshClaims } from '@keyway/tokens';
import { FamilyRaceLost, issuePair, type Grant } from './context.ts';
import { proofKey } from './dpop.ts';

/**
 * A refresh is not a new authentication (OpenID Connect Core §12.2): the new pair carries the login's
 * amr and auth_time unchanged. A token from before they existed counts as a password login at its iat.
 */
function authenticationOf(claims: RefreshClaims): AuthenticationContext {
  const amr = Amr.array().min(1).safeParse(claims.amr);
  return { amr: amr.success ? amr.data : ['pwd'], auth_time: claims.auth_time ?? claims.iat };
}

/**
 * RFC 6749 §6 with rotation: each use spends the token and issues the next one in its family.
 * Presenting a spent token revokes the whole family (RFC 9700 §4.14, reuse detection).
 */
export const refresh_token: Grant<'refresh_token'> = {
  grantType: 'refresh_token',
  issued: 'token.refreshed',
  async handler(params, context, origin, audit) {
    const claims = await verifyOwnRefreshToken(context, params.refresh_token).catch((err: unknown) => {
      if (err instanceof TokenError) throw new InvalidGrant('the refresh token is invalid, expired or revoked', err.code);
      throw err;
    });
    // The presented token as the trail knows it: its jti (style rule 11), until a new pair replaces it.
    audit.note({ subject: claims.sub, tenant: claims.tid, clientId: claims.client_id, tokenId: claims.jti, detail: { family: claims.fid } });
    const current = await context.families.current(claims.fid);
    if (current === null) throw new InvalidGrant('the refresh token is invalid, expired or revoked', 'family revoked or expired');
    // RFC 9449 §5: a bound token only with a proof by its key, checked before reuse detection, so a
    // thief without the key (a copied token, even a spent one) cannot end the agent's session.
    const bound = claims.cnf?.jkt;
    const presented = await proofKey(context, origin, audit, bound);
    // a bound family keeps its key; a bearer family refreshed with a proof is bound from now on
    const jkt = bound ?? presented;
    if (current !== claims.jti) {
      // A duplicate of a refresh that just succeeded (a client retry, or a concurrent request that
      // lost the race) is refused without punishing the family; anything later is a replay.
      if (await context.families.spentRecently(claims.fid, claims.jti)) {
        throw new InvalidGrant('the refresh token is invalid, expired or revoked', 'spent moments ago by a concurrent refresh');
      }
      const revoked = await context.families.revoke(claims.fid, 'reuse_detected');
      origin.log.warn('refresh_family.revoked', { reason: 'reuse_detected', fid: claims.fid, jti: claims.jti, sub: claims.sub, tenant: claims.tid });
      if (revoked) {
        context.metrics.tokensRevoked.add(1, { tenant: claims.tid, reason: 'reuse_detected' });
        audit.also({ action: 'refresh_family.revoked', outcome: 'success', reason: 'reuse_detected' });
      }
      throw audit.refuse(new InvalidGrant('the refresh token is invalid, expired or revoked', 'spent refresh token presented: family revoked'), 'refresh.reuse_detected');
    }

    // RFC 6749 §6: a refresh may narrow the scope, never widen it.
    const granted = grantedAccess(claims.scope);
    const asked = params.scope === undefined ? granted : requestedAccess(params.scope, context.settings);
    if (!withinGrant(asked, granted)) throw new InvalidScope('the requested scope exceeds the scope originally granted');

    // The rights the presented token granted, on the feeds asked for (a token from before the claim: its roles').
    const feeds = asked.kind === 'feeds' ? asked.feeds : [];
    let rights = tokenFeedRights(claims, feeds);
    let releases = tokenReleaseRights(claims);
    // Strict mode re-checks entitlements (or the operator role) on every refresh, so a removal also holds for a token in flight.
    let roles = claims.roles;
    if (context.strict) {
      /** The grant no longer holds: its family ends (strict mode), recorded with the reason. */
      const noLongerAuthorized = async (reason: string, detail: string | undefined): Promise<never> => {
        if (await context.families.revoke(claims.fid, reason)) {
          context.metrics.tokensRevoked.add(1, { tenant: claims.tid, reason });
          audit.also({ action: 'refresh_family.revoked', outcome: 'success', reason });
        }
        throw audit.refuse(new InvalidGrant('the grant is no longer authorized', detail), 'authorization.denied', { reason });
      };
      const decision = await authorize(context.entitlement, claims.sub, claims.tid, asked).catch(async (err: unknown) => {
        if (!(err instanceof AccessDenied)) throw err;
        return noLongerAuthorized(err.detail ?? err.code, err.detail);
      });
      roles = decision.roles;
      // the rights still granted, never more than the token had (RFC 6749 §6)
      rights = intersectRights(rights, decision.rights);
      releases = intersectReleaseRights(releases, decision.releases);
      // release rights narrow with the tier and the user's products; none of the token's left ends the family
      if (asked.kind === 'releases' && Object.keys(releases).length === 0) await noLongerAuthorized('product_not_entitled', 'none of the token’s release rights remain');
    }
    try {
      return await issuePair(context, audit, { sub: claims.sub, tid: claims.tid, roles, access: asked, rights, releases, client_id: claims.client_id }, authenticationOf(claims), {
        fid: claims.fid,
        spentJti: claims.jti,
        jkt,
      });
    } catch (err) {
      // Exactly one of concurrent refreshes of the same token wins; the others are refused without
      // revoking the family, since they presented the token while it was still current.
      if (err instanceof FamilyRaceLost) throw new InvalidGrant('the refresh token is invalid, expired or revoked', 'lost a concurrent refresh');
      throw err;
    }
  },
};
