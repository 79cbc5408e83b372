import { createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, timingSafeEqual, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, EmbeddedJWK, exportJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { requireCanonicalCompact } from './compact.ts';
import { toTokenError } from './errors.ts';

/**
 * DPoP (RFC 9449): a client proves, on each request, that it holds the private key a token is bound
 * to (`cnf.jkt`, the key's RFC 7638 thumbprint). Both sides live here: the proof an agent signs and
 * the checks PAS, PAC and the topic service make, so there is one reading of the RFC.
 */
export const DPOP_HEADER = 'dpop';
export const DPOP_NONCE_HEADER = 'dpop-nonce';
/** RFC 8725 §3.1 allow-list, as for client assertions: the key in the proof never picks the algorithm. */
export const DPOP_ALGS = ['ES256', 'EdDSA'] as const;
export type DpopAlg = (typeof DPOP_ALGS)[number];

const PROOF_TYP = 'dpop+jwt';
const MAX_JTI_LENGTH = 256;
const MAX_PROOF_LENGTH = 4096;

// ---------------------------------------------------------------------------------------------
// the client: a key pair and the proofs it signs
// ---------------------------------------------------------------------------------------------

export interface DpopKey {
  alg: DpopAlg;
  privateKey: KeyObject;
  publicJwk: JWK;
  /** RFC 7638 SHA-256 thumbprint of publicJwk, base64url: what tokens bound to this key carry as cnf.jkt */
  jkt: string;
}

async function dpopKeyOf(privateKey: KeyObject): Promise<DpopKey> {
  const alg: DpopAlg = privateKey.asymmetricKeyType === 'ed25519' ? 'EdDSA' : 'ES256';
  if (privateKey.asymmetricKeyType !== 'ed25519' && privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError('a DPoP key is EC P-256 (ES256) or Ed25519 (EdDSA)');
  }
  const { kty, crv, x, y } = await exportJWK(createPublicKey(privateKey));
  const publicJwk: JWK = y === undefined ? { kty, crv, x } : { kty, crv, x, y };
  return { alg, privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

/** A new key pair for DPoP (ES256 unless asked otherwise). */
export function generateDpopKey(alg: DpopAlg = 'ES256'): Promise<DpopKey> {
  const { privateKey } = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return dpopKeyOf(privateKey);
}

/** The key of a PKCS#8 PEM, as an agent keeps it in its state directory. */
export const dpopKeyFromPem = (pkcs8Pem: string): Promise<DpopKey> => dpopKeyOf(createPrivateKey(pkcs8Pem));
export const dpopKeyToPem = (key: DpopKey): string => key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** RFC 9449 §4.2 `ath`: base64url SHA-256 of the access token (or, for PAC and the topic service, the credential) the proof goes with. */
export const tokenHash = (token: string): string => createHash('sha256').update(token, 'ascii').digest('base64url');

export interface ProofTarget {
  /** the HTTP method of the request */
  htm: string;
  /** the request's URI; query and fragment are dropped (RFC 9449 §4.2) */
  htu: string;
  /** the credential sent with the proof (access token, refresh token at PAC, SAS key at the topic service) */
  credential?: string | undefined;
  /** the server's last DPoP-Nonce */
  nonce?: string | undefined;
}

/** RFC 9449 §4.1-4.2: a proof for one request, signed with the key it shows. */
export function createDpopProof(key: DpopKey, target: ProofTarget, now: number = Date.now()): Promise<string> {
  return new SignJWT({
    htm: target.htm.toUpperCase(),
    htu: targetUri(target.htu),
    ...(target.credential !== undefined && { ath: tokenHash(target.credential) }),
    ...(target.nonce !== undefined && { nonce: target.nonce }),
  })
    .setProtectedHeader({ typ: PROOF_TYP, alg: key.alg, jwk: key.publicJwk })
    .setJti(randomUUID())
    .setIssuedAt(Math.floor(now / 1000))
    .sign(key.privateKey);
}

/** RFC 9449 §4.3 item 9: the URI without query and fragment, normalized as the URL parser does (scheme and host case, default port, dot segments). */
function targetUri(uri: string): string {
  const url = new URL(uri);
  return `${url.origin}${url.pathname}`;
}

// ---------------------------------------------------------------------------------------------
// the server: nonces and proof checks
// ---------------------------------------------------------------------------------------------

/** Why a proof was refused: the OAuth error codes of RFC 9449 §5, §7.1 and §8. */
export class DpopError extends Error {
  override name = 'DpopError';
  constructor(
    readonly code: 'invalid_dpop_proof' | 'use_dpop_nonce',
    message: string,
  ) {
    super(message);
  }
}

/**
 * RFC 9449 §8 server nonces, without state: a nonce is the time window it was issued in plus an HMAC of
 * it, so every instance that shares the secret accepts it, for the window it names and the next one.
 */
export interface DpopNonces {
  current(): string;
  isValid(nonce: string): boolean;
}

export function dpopNonces(secret: Buffer, options: { windowSec?: number; now?: () => number } = {}): DpopNonces {
  const windowMs = (options.windowSec ?? 60) * 1000;
  const now = options.now ?? Date.now;
  const mac = (window: number) => createHmac('sha256', secret).update(`dpop-nonce:${window}`).digest().subarray(0, 16);
  const nonceOf = (window: number) => `${window.toString(36)}.${mac(window).toString('base64url')}`;
  return {
    current: () => nonceOf(Math.floor(now() / windowMs)),
    isValid(nonce) {
      const [windowPart, macPart, ...rest] = nonce.split('.');
      if (windowPart === undefined || macPart === undefined || rest.length > 0 || !/^[0-9a-z]{1,12}$/.test(windowPart)) return false;
      const window = Number.parseInt(windowPart, 36);
      const age = Math.floor(now() / windowMs) - window;
      if (age < 0 || age > 1) return false;
      const presented = Buffer.from(macPart, 'base64url');
      const expected = mac(window);
      return presented.length === expected.length && timingSafeEqual(presented, expected);
    },
  };
}

export interface DpopPolicy {
  /** a nonce this server issued is required (and use_dpop_nonce answered without one) when given */
  nonces?: DpopNonces;
  /** how far iat may be from now, in seconds, either way */
  iatWindowSec: number;
  /** records a proof's jti (scoped by its key) until `expiresAt` (unix seconds) unless recorded before; false = already used */
  claimJti(jkt: string, jti: string, expiresAt: number): Promise<boolean>;
  now?: () => number;
}

export interface ExpectedProof {
  htm: string;
  /** the URI the server is reached at (its configured public URL plus the path) */
  htu: string;
  /** the credential the proof must name in ath; absent when the request carries none (a login) */
  credential?: string;
  /** the thumbprint the credential is bound to; the proof's key must match it */
  jkt?: string;
}

const isAllowed = (alg: unknown): alg is DpopAlg => (DPOP_ALGS as readonly unknown[]).includes(alg);
const sameText = (a: string, b: string) => {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
};

/**
 * RFC 9449 §4.3: every check on a proof, in order; answers the thumbprint of the key that signed it.
 * The jti is spent last, so a proof refused for another reason can be corrected and sent again.
 */
export async function verifyDpopProof(proof: string, expected: ExpectedProof, policy: DpopPolicy): Promise<{ jkt: string }> {
  const refuse = (message: string): never => {
    throw new DpopError('invalid_dpop_proof', message);
  };
  if (proof.length > MAX_PROOF_LENGTH) refuse('the DPoP proof is too long');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    requireCanonicalCompact(proof);
    header = decodeProtectedHeader(proof);
    decodeJwt(proof);
  } catch {
    return refuse('the DPoP proof is not a JWT');
  }
  if (header.typ !== PROOF_TYP) refuse('the DPoP proof is not typed dpop+jwt');
  if (!isAllowed(header.alg)) refuse(`the DPoP proof's algorithm is not one of ${DPOP_ALGS.join(', ')}`);
  const jwk = header.jwk;
  if (jwk === undefined || typeof jwk !== 'object' || 'd' in jwk || 'k' in jwk) refuse('the DPoP proof does not carry a public key (jwk)');

  const now = policy.now ?? Date.now;
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, { typ: PROOF_TYP, algorithms: [...DPOP_ALGS], currentDate: new Date(now()) }));
  } catch (err) {
    const reason = toTokenError(err);
    return refuse(reason.code === 'ERR_TOKEN_SIGNATURE' ? 'the DPoP proof signature does not verify' : `the DPoP proof is invalid: ${reason.message}`);
  }
  const { jti, htm, htu, iat, ath, nonce } = payload;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) refuse('the DPoP proof has no usable jti');
  if (htm !== expected.htm.toUpperCase()) refuse('the DPoP proof names another HTTP method (htm)');
  let presentedUri: string | undefined;
  try {
    presentedUri = typeof htu === 'string' ? targetUri(htu) : undefined;
  } catch {
    presentedUri = undefined;
  }
  if (presentedUri !== targetUri(expected.htu)) refuse('the DPoP proof names another URI (htu)');
  const nowSec = Math.floor(now() / 1000);
  if (typeof iat !== 'number' || Math.abs(nowSec - iat) > policy.iatWindowSec) refuse('the DPoP proof is too old or from the future (iat)');
  if (expected.credential !== undefined) {
    if (typeof ath !== 'string' || !sameText(ath, tokenHash(expected.credential))) refuse('the DPoP proof is for another credential (ath)');
  }
  const jkt = await calculateJwkThumbprint(jwk as JWK, 'sha256');
  if (expected.jkt !== undefined && !sameText(jkt, expected.jkt)) refuse('the DPoP proof is signed by another key than the one the credential is bound to');
  if (policy.nonces !== undefined && (typeof nonce !== 'string' || !policy.nonces.isValid(nonce))) {
    throw new DpopError('use_dpop_nonce', 'a DPoP proof with the server nonce of the DPoP-Nonce header is required');
  }
  if (!(await policy.claimJti(jkt, jti as string, (iat as number) + policy.iatWindowSec))) refuse('the DPoP proof was used before (jti)');
  return { jkt };
}
