import { randomUUID } from 'node:crypto';
import { jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { toTokenError, TokenError } from './errors.ts';
import { SIGNING_ALG } from './keyring.ts';
import type { Signer } from './signer.ts';
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
  /** audience of access tokens with scope releases: the releases service; unset = scope releases is not offered */
  releasesAudience?: string;
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
  /**
   * Scope releases: product by product, the release rights granted (contracts ReleaseRights, which
   * readers parse it with: tokenReleaseRights).
   */
  releases: z.record(z.string(), z.unknown()).optional(),
  /** RFC 9449 §6: the DPoP key the token is bound to (its RFC 7638 thumbprint); absent on bearer tokens */
  cnf: z.object({ jkt: z.string().min(1) }).optional(),
  /**
   * How and when the holder authenticated (OpenID Connect Core §2, contracts AuthenticationContext):
   * RFC 8176 methods, the assurance level, the time of the login; kept unchanged by refreshes. Absent
   * on tokens issued before they existed (read as a single factor, authenticated at iat).
   */
  amr: z.array(z.string()).optional(),
  acr: z.string().optional(),
  auth_time: z.number().int().optional(),
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
  releases?: Record<string, unknown>;
  cnf?: { jkt: string };
  amr?: string[];
  acr?: string;
  auth_time?: number;
}

export interface IssuedToken {
  token: string;
  jti: string;
  exp: number;
  iat: number;
}

const nowSec = (s: TokenSettings) => Math.floor((s.now?.() ?? Date.now()) / 1000);

/** RFC 7518 §3.4: an ES256 signature is R || S, 32 octets each. */
const ES256_SIGNATURE_BYTES = 64;
const b64url = (json: object) => Buffer.from(JSON.stringify(json)).toString('base64url');

/** RFC 7515 §7.1 compact serialization, signed through the Signer seam (a local key or a KMS alike). */
async function sign(signer: Signer, s: TokenSettings, typ: string, audience: string | string[], ttl: number, claims: JWTPayload): Promise<IssuedToken> {
  // RFC 8725 §3.1: the algorithm is fixed, whatever a signer claims.
  if (signer.alg !== SIGNING_ALG) throw new Error(`the signer signs ${signer.alg}, tokens are ${SIGNING_ALG}`);
  const iat = nowSec(s);
  const jti = randomUUID();
  const input = `${b64url({ alg: SIGNING_ALG, typ, kid: signer.kid })}.${b64url({ ...claims, iss: s.issuer, aud: audience, jti, iat, nbf: iat, exp: iat + ttl })}`;
  const signature = await signer.sign(new TextEncoder().encode(input));
  if (signature.length !== ES256_SIGNATURE_BYTES) throw new Error(`the signer answered ${signature.length} octets, not an ES256 JWS signature (R || S)`);
  // Low s only: the verifier refuses the high-s twin of every token (compact.ts).
  return { token: lowS(`${input}.${Buffer.from(signature).toString('base64url')}`), jti, iat, exp: iat + ttl };
}

/** `audience` defaults to accessAudience; operator tokens name the admin APIs as well (adminAudiences). */
export function issueAccessToken(signer: Signer, s: TokenSettings, subject: Subject & { fid?: string }, audience: string | string[] = s.accessAudience): Promise<IssuedToken> {
  return sign(signer, s, ACCESS_TOKEN_TYP, audience, s.accessTtlSec, { ...subject });
}

export function issueRefreshToken(signer: Signer, s: TokenSettings, subject: Subject & { fid: string }): Promise<IssuedToken> {
  return sign(signer, s, REFRESH_TOKEN_TYP, s.refreshAudience, s.refreshTtlSec, { ...subject });
}

export interface VerifySettings {
  issuer: string;
  /** several: the token names any one of them (PAS checking its own tokens of each audience) */
  audience: string | string[];
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
