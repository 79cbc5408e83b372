import { accessTokenChecker, TokenError, verifyAccessToken, verifyRefreshToken, type AccessClaims, type RefreshClaims } from '@keyway/tokens';
import type { RefreshFamilies } from '../families/refresh-family.ts';
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

/** Either kind, for revocation and introspection; undefined when it is neither (or invalid). */
export async function verifyOwnToken(
  context: Verifier,
  token: string,
  hint?: string,
): Promise<{ type: 'refresh_token'; claims: RefreshClaims } | { type: 'access_token'; claims: AccessClaims } | undefined> {
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
