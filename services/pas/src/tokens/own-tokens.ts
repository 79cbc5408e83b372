import { accessTokenChecker, TokenError, verifyAccessToken, verifyRefreshToken, type AccessClaims, type RefreshClaims } from '@keyway/tokens';
import { AccessDenied } from '@keyway/kit';
import type { RefreshFamilies } from '../families/refresh-family.ts';
import { authorize, grantedAccess } from '../grants/authorize.ts';
import type { GrantContext } from '../grants/context.ts';

type Verifier = Pick<GrantContext, 'ring' | 'settings'>;

const check = (context: Verifier, audience: string | string[]) => ({
  issuer: context.settings.issuer,
  audience,
  clockToleranceSec: context.settings.clockToleranceSec,
  now: context.settings.now,
});

/** PAS checking a refresh token it issued: signature by its own ring, typ, iss, aud = PAS, exp. */
export const verifyOwnRefreshToken = (context: Verifier, token: string): Promise<RefreshClaims> =>
  verifyRefreshToken(token, context.ring.localKeySet(), check(context, context.settings.refreshAudience));

/** Either audience PAS issues access tokens for: PAC (feeds, operator) or the releases service (releases). */
const accessAudiences = ({ settings }: Verifier): string[] => [settings.accessAudience, ...(settings.releasesAudience === undefined ? [] : [settings.releasesAudience])];
const verifyOwnAccessToken = (context: Verifier, token: string): Promise<AccessClaims> => verifyAccessToken(token, context.ring.localKeySet(), check(context, accessAudiences(context)));

/**
 * Operator bearer tokens at PAS's own admin API: the one access-token verifier against PAS's own ring,
 * "aud" naming PAS (one of the admin audiences operator tokens carry), active while the refresh
 * family lives, read here directly (what introspection would answer) so nothing is cached.
 */
export const ownOperatorTokenChecker = (context: Verifier & { families: RefreshFamilies }) =>
  accessTokenChecker({
    ...check(context, context.settings.issuer),
    keys: (header, token) => context.ring.localKeySet()(header, token),
    isActive: async (_token, claims) => claims.fid !== undefined && (await context.families.current(claims.fid)) !== null,
    cacheMs: 0,
  });

type VerifiedToken = { type: 'refresh_token'; claims: RefreshClaims } | { type: 'access_token'; claims: AccessClaims };
type Activity = Verifier & Pick<GrantContext, 'families' | 'dpop' | 'strict' | 'entitlement'>;

/**
 * RFC 7662 "active" for a token that verified: a refresh token only while it is its family's current
 * one, an access token only while its family lives; never when bound to a revoked DPoP key (even if
 * its family outlived the revocation: a login in flight meanwhile). In strict mode also only while the
 * entitlement service still grants its holder the token's access (issue 11): a removal holds here
 * even before its change event has revoked the family; when it cannot answer, this rejects, never "active".
 */
export async function isActive(context: Activity, verified: VerifiedToken): Promise<boolean> {
  if (!verified.claims.fid) return false;
  const current = await context.families.current(verified.claims.fid);
  if (verified.type === 'refresh_token' ? current !== verified.claims.jti : current === null) return false;
  const jkt = verified.claims.cnf?.jkt;
  if (jkt !== undefined && (await context.dpop?.revoked.has(jkt))) return false;
  if (!context.strict) return true;
  const { sub, tid, scope } = verified.claims;
  return authorize(context.entitlement, sub, tid, grantedAccess(scope)).then(
    () => true,
    (err: unknown) => {
      if (err instanceof AccessDenied) return false;
      throw err;
    },
  );
}

/** Any access token PAS issued (for PAC or the releases service), while it is active: the SSH CA's callers. */
export const ownAccessTokenChecker = (context: Activity) =>
  accessTokenChecker({
    ...check(context, accessAudiences(context)),
    keys: (header, token) => context.ring.localKeySet()(header, token),
    isActive: (_token, claims) => isActive(context, { type: 'access_token', claims }),
    cacheMs: 0,
  });

/** Either kind, for revocation and introspection; undefined when it is neither (or invalid). */
export async function verifyOwnToken(context: Verifier, token: string, hint?: string): Promise<VerifiedToken | undefined> {
  const attempts =
    hint === 'access_token'
      ? [
          async () => ({ type: 'access_token' as const, claims: await verifyOwnAccessToken(context, token) }),
          async () => ({ type: 'refresh_token' as const, claims: await verifyOwnRefreshToken(context, token) }),
        ]
      : [
          async () => ({ type: 'refresh_token' as const, claims: await verifyOwnRefreshToken(context, token) }),
          async () => ({ type: 'access_token' as const, claims: await verifyOwnAccessToken(context, token) }),
        ];
  for (const attempt of attempts) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
    }
  }
  return undefined;
}
