import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { toTokenError, TokenError } from './errors.ts';
import { SIGNING_ALG, type KeyRing } from './keyring.ts';
import { lowS, requireCanonicalCompact, requireLowS } from './compact.ts';

/** RFC 9068 media type for access tokens; refresh tokens get their own so neither stands in for the other (RFC 8725 §3.11). */
export const ACCESS_TOKEN_TYP = 'at+jwt';
export const REFRESH_TOKEN_TYP = 'rt+jwt';

export interface TokenSettings {
  issuer: string;
  /** audience of access tokens (PAC and the topic admin APIs) */
  accessAudience: string;
  /**
   * audiences operator access tokens carry besides accessAudience: the admin APIs that accept them
   * (the entitlement service, PAS itself). RFC 8707 §2: the token names every resource it is for.
   */
  adminAudiences?: string[];
  /** audience of refresh tokens: PAS itself */
  refreshAudience: string;
  accessTtlSec: number;
  refreshTtlSec: number;
  clockToleranceSec: number;
  now?: () => number;
}

const Roles = z.array(z.string());
const BaseClaims = z.object({
  iss: z.string(),
  sub: z.string().min(1),
  aud: z.union([z.string(), z.array(z.string())]),
  jti: z.string().min(1),
  iat: z.number(),
  nbf: z.number(),
  exp: z.number(),
  tid: z.string().min(1),
  roles: Roles,
  scope: z.string(),
  /**
   * The rights granted on each feed of the scope ("listen", "send", "listen-send"), as the entitlement
   * service answered them; absent on operator tokens and on tokens issued before the claim existed.
   */
  rights: z.record(z.string(), z.string()).optional(),
});
/** fid: the refresh family (session) the access token belongs to, so revoking the family deactivates it at introspection. */
export const AccessClaims = BaseClaims.extend({ client_id: z.string(), fid: z.string().min(1).optional() });
export const RefreshClaims = BaseClaims.extend({ fid: z.string().min(1), client_id: z.string() });
export type AccessClaims = z.infer<typeof AccessClaims>;
export type RefreshClaims = z.infer<typeof RefreshClaims>;

export interface Subject {
  sub: string;
  tid: string;
  roles: string[];
  scope: string;
  client_id: string;
  rights?: Record<string, string>;
}

export interface IssuedToken {
  token: string;
  jti: string;
  exp: number;
  iat: number;
}

const nowSec = (s: TokenSettings) => Math.floor((s.now?.() ?? Date.now()) / 1000);

async function sign(ring: KeyRing, s: TokenSettings, typ: string, audience: string | string[], ttl: number, claims: JWTPayload): Promise<IssuedToken> {
  const key = ring.active();
  const iat = nowSec(s);
  const jti = randomUUID();
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: SIGNING_ALG, typ, kid: key.kid })
    .setIssuer(s.issuer)
    .setAudience(audience)
    .setJti(jti)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + ttl)
    .sign(key.privateKey);
  // Low s only: the verifier refuses the high-s twin of every token (compact.ts).
  return { token: lowS(token), jti, iat, exp: iat + ttl };
}

/** `audience` defaults to accessAudience; operator tokens name the admin APIs as well (adminAudiences). */
export function issueAccessToken(ring: KeyRing, s: TokenSettings, subject: Subject & { fid?: string }, audience: string | string[] = s.accessAudience): Promise<IssuedToken> {
  return sign(ring, s, ACCESS_TOKEN_TYP, audience, s.accessTtlSec, { ...subject });
}

export function issueRefreshToken(ring: KeyRing, s: TokenSettings, subject: Subject & { fid: string }): Promise<IssuedToken> {
  return sign(ring, s, REFRESH_TOKEN_TYP, s.refreshAudience, s.refreshTtlSec, { ...subject });
}

export interface VerifySettings {
  issuer: string;
  audience: string;
  clockToleranceSec: number;
  now?: () => number;
}

async function verify<T extends z.ZodType>(token: string, keys: JWTVerifyGetKey, v: VerifySettings, typ: string, shape: T): Promise<z.output<T>> {
  try {
    // One spelling per token (issue 9): canonical base64url parts, and (below) the low s.
    const [, , signature] = requireCanonicalCompact(token);
    const { payload } = await jwtVerify(token, keys, {
      algorithms: [SIGNING_ALG],
      issuer: v.issuer,
      audience: v.audience,
      typ,
      clockTolerance: v.clockToleranceSec,
      requiredClaims: ['iss', 'sub', 'aud', 'jti', 'iat', 'nbf', 'exp'],
      currentDate: v.now ? new Date(v.now()) : undefined,
    });
    // ES256 is the only algorithm allowed, and PAS signs with the low s: the high-s twin is a re-encoding.
    requireLowS(signature);
    const parsed = shape.safeParse(payload);
    if (!parsed.success) throw new TokenError('ERR_TOKEN_CLAIM', 'token claims are incomplete');
    return parsed.data;
  } catch (err) {
    throw toTokenError(err);
  }
}

/** The one access-token verifier: fixed algorithm, typ, iss, aud, exp and nbf with bounded skew (RFC 8725). */
export function verifyAccessToken(token: string, keys: JWTVerifyGetKey, v: VerifySettings): Promise<AccessClaims> {
  return verify(token, keys, v, ACCESS_TOKEN_TYP, AccessClaims);
}

/** The one refresh-token verifier; audience is PAS. */
export function verifyRefreshToken(token: string, keys: JWTVerifyGetKey, v: VerifySettings): Promise<RefreshClaims> {
  return verify(token, keys, v, REFRESH_TOKEN_TYP, RefreshClaims);
}
