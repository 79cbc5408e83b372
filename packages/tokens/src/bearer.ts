import type { JWTVerifyGetKey } from 'jose';
import { TokenError, type TokenErrorCode } from './errors.ts';
import { verifyAccessToken, type AccessClaims, type VerifySettings } from './tokens.ts';

/** How long an issuer's "active" answer for a token is reused: revoking a session takes effect within it. */
const DEFAULT_ACTIVE_CACHE_MS = 5000;
/** Entries beyond this are swept of expired answers (and dropped entirely if none expired). */
const MAX_CACHED = 10_000;

export type AccessTokenCheck = { active: true; claims: AccessClaims } | { active: false; reason: TokenErrorCode | 'ERR_TOKEN_INACTIVE' };

export interface AccessTokenCheckerOptions extends VerifySettings {
  /** the issuer's public keys: remoteKeySet over its JWKS, or PAS's own ring */
  keys: JWTVerifyGetKey;
  /**
   * Whether the issuer still holds the token active (RFC 7662 introspection at PAS, or PAS's own
   * session state). Called only for tokens that verified; rejects when it cannot be told.
   */
  isActive: (token: string, claims: AccessClaims) => Promise<boolean>;
  /** how long an isActive answer is reused, per token (default 5 s; 0 = ask every time) */
  cacheMs?: number;
}

/**
 * A resource server's check of a bearer access token (RFC 6750): first the one verifyAccessToken
 * (fixed alg, typ, iss, aud, exp/nbf with bounded skew; RFC 8725), then the issuer's word on
 * whether the session behind it was revoked meanwhile, cached a few seconds by `jti` so an admin
 * API does not ask PAS on every request. Never throws for a bad token: it answers inactive.
 */
export function accessTokenChecker(options: AccessTokenCheckerOptions): (token: string) => Promise<AccessTokenCheck> {
  const cacheMs = options.cacheMs ?? DEFAULT_ACTIVE_CACHE_MS;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { active: boolean; until: number }>();

  const remember = (jti: string, active: boolean, expMs: number) => {
    if (cache.size >= MAX_CACHED) {
      for (const [key, entry] of cache) if (entry.until <= now()) cache.delete(key);
      if (cache.size >= MAX_CACHED) cache.clear();
    }
    // Never past the token's own expiry: an expired token must fail verification, not hit the cache.
    cache.set(jti, { active, until: Math.min(now() + cacheMs, expMs) });
  };

  return async (token) => {
    let claims: AccessClaims;
    try {
      claims = await verifyAccessToken(token, options.keys, options);
    } catch (err) {
      if (err instanceof TokenError) return { active: false, reason: err.code };
      throw err;
    }
    const cached = cache.get(claims.jti);
    let active: boolean;
    if (cached && cached.until > now()) {
      active = cached.active;
    } else {
      active = await options.isActive(token, claims);
      if (cacheMs > 0) remember(claims.jti, active, claims.exp * 1000);
    }
    return active ? { active: true, claims } : { active: false, reason: 'ERR_TOKEN_INACTIVE' };
  };
}

/** What an admin API other than PAS (the entitlement service, PAC) knows to check PAS's operator access tokens. */
export interface OperatorTokenOptions {
  /** PAS: the issuer of operator access tokens */
  pasIssuer: string;
  /** this service's URL: operator access tokens must name it in "aud" (RFC 8707) */
  publicUrl: string;
  clockToleranceSec: number;
  now?: () => number;
  /** how long PAS's introspection answer for an operator token is reused (default 5 s) */
  operatorTokenCacheMs?: number;
}

/**
 * accessTokenChecker for operator tokens at another service's admin API: PAS's published keys, "aud"
 * naming this service, and active while RFC 7662 introspection at PAS says so.
 */
export function operatorTokenChecker(
  options: OperatorTokenOptions,
  pas: { keys: JWTVerifyGetKey; introspect: (accessToken: string) => Promise<{ active: boolean }> },
): (token: string) => Promise<AccessTokenCheck> {
  return accessTokenChecker({
    issuer: options.pasIssuer,
    audience: options.publicUrl,
    clockToleranceSec: options.clockToleranceSec,
    now: options.now,
    keys: pas.keys,
    isActive: async (token) => (await pas.introspect(token)).active,
    cacheMs: options.operatorTokenCacheMs,
  });
}
