import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { requireCanonicalCompact } from './compact.ts';
import { toTokenError, TokenError } from './errors.ts';

/**
 * RFC 8725 §3.1: a fixed allow-list, never the algorithm a token names. This rules out "none" and
 * HMAC algorithms keyed with a public key (RFC 8725 §2.1, §2.2).
 */
const CLIENT_ASSERTION_ALGS = ['ES256', 'EdDSA'] as const;
export type ClientAssertionAlg = (typeof CLIENT_ASSERTION_ALGS)[number];

/** A client's registered public key and the one algorithm it verifies. */
export interface ClientKey {
  jwk: JWK;
  alg: ClientAssertionAlg;
}

export interface ClientAssertionPolicy {
  /** values of which "aud" must contain one (RFC 7523 §3 item 3): the issuer and the token endpoint */
  audience: string[];
  clockToleranceSec: number;
  /** the longest "exp" an assertion may carry, counted from now and from its "iat" */
  maxLifetimeSec: number;
  /** the client's key named by "kid", or its only key when the header names none */
  keyFor(clientId: string, kid: string | undefined): Promise<ClientKey | undefined>;
  /** records a jti until `expiresAt` (unix seconds) unless recorded before; false = already used */
  claimJti(clientId: string, jti: string, expiresAt: number): Promise<boolean>;
  now?: () => number;
}

export interface VerifiedClientAssertion {
  clientId: string;
  jti: string;
  exp: number;
}

const MAX_JTI_LENGTH = 256;

/** jose's decoders throw TypeError for input that is not a JWS at all. */
function decode(assertion: string) {
  try {
    return { header: decodeProtectedHeader(assertion), unverified: decodeJwt(assertion) };
  } catch {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'the assertion is not a JWT');
  }
}

const isAllowed = (alg: unknown): alg is ClientAssertionAlg => (CLIENT_ASSERTION_ALGS as readonly unknown[]).includes(alg);

/**
 * RFC 7523 §3: the checks an authorization server makes on a JWT used for client authentication
 * (private_key_jwt, RFC 7523 §2.2). Throws TokenError; the caller answers invalid_client.
 */
export async function verifyClientAssertion(assertion: string, policy: ClientAssertionPolicy): Promise<VerifiedClientAssertion> {
  try {
    // One spelling per assertion (issue 9). Its s may be high: clients sign with standard libraries,
    // which do not normalize it, and an assertion is identified by its jti, spent once, never by its string.
    requireCanonicalCompact(assertion);
    const { header, unverified } = decode(assertion);
    if (!isAllowed(header.alg)) throw new TokenError('ERR_TOKEN_ALG', '"alg" (Algorithm) Header Parameter value not allowed');

    // RFC 7523 §3 items 1 and 2: for client authentication "iss" and "sub" both MUST be the client_id.
    // They are read before the signature is checked only to find the key; jwtVerify re-checks them.
    if (typeof unverified.sub !== 'string' || unverified.sub === '' || unverified.iss !== unverified.sub) {
      throw new TokenError('ERR_TOKEN_CLAIM', '"iss" and "sub" must both be the client_id');
    }
    const clientId = unverified.sub;
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    const key = await policy.keyFor(clientId, kid);
    if (!key) throw new TokenError('ERR_TOKEN_KID', 'no registered key matches the assertion');

    const nowMs = policy.now?.() ?? Date.now();
    // RFC 7523 §3 item 6: the signature; only the algorithm the registered key is for.
    const { payload } = await jwtVerify(assertion, await importJWK(key.jwk, key.alg), {
      algorithms: [key.alg],
      issuer: clientId,
      subject: clientId,
      audience: policy.audience,
      clockTolerance: policy.clockToleranceSec,
      // RFC 7523 §3 item 4: "exp" is required; "jti" is required here so replays can be refused.
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'jti'],
      currentDate: new Date(nowMs),
    });

    const now = Math.floor(nowMs / 1000);
    const exp = payload.exp!;
    const tolerance = policy.clockToleranceSec;
    // RFC 7523 §3 item 4 lets the server "reject JWTs with an "exp" claim value that is unreasonably
    // far in the future"; an assertion is a one-shot proof, not a credential to keep.
    if (exp - now > policy.maxLifetimeSec + tolerance) {
      throw new TokenError('ERR_TOKEN_CLAIM', `"exp" claim is more than ${policy.maxLifetimeSec} seconds in the future`);
    }
    if (payload.iat !== undefined) {
      if (payload.iat > now + tolerance) throw new TokenError('ERR_TOKEN_NOT_YET_VALID', '"iat" claim timestamp check failed (it should be in the past)');
      if (exp - payload.iat > policy.maxLifetimeSec) {
        throw new TokenError('ERR_TOKEN_CLAIM', `"exp" claim is more than ${policy.maxLifetimeSec} seconds after "iat"`);
      }
    }

    const jti = payload.jti!;
    if (jti === '' || jti.length > MAX_JTI_LENGTH) throw new TokenError('ERR_TOKEN_CLAIM', '"jti" claim must be 1 to 256 characters');
    // RFC 7523 §3 item 7: each jti is accepted once, remembered for as long as the JWT could be valid.
    if (!(await policy.claimJti(clientId, jti, exp + tolerance))) throw new TokenError('ERR_TOKEN_REPLAYED', '"jti" claim was already used');
    return { clientId, jti, exp };
  } catch (err) {
    throw toTokenError(err);
  }
}
