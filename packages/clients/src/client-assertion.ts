import { KeyObject, randomUUID, sign, type webcrypto } from 'node:crypto';

export type AssertionAlg = 'ES256' | 'EdDSA';

export interface ClientKeyPair {
  /** the client_id: the agent user's id */
  clientId: string;
  privateKey: webcrypto.CryptoKey | KeyObject;
  /** the kid the public key was registered under */
  kid: string;
  alg: AssertionAlg;
}

/** PAS accepts assertions for five minutes at most; one minute is enough to reach it. */
const ASSERTION_LIFETIME_SEC = 60;

/** The JWS algorithm a private key signs with: EC P-256 → ES256, Ed25519 → EdDSA (RFC 8037). */
export function assertionAlgFor(privateKey: KeyObject): AssertionAlg {
  if (privateKey.type === 'private' && privateKey.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (privateKey.type === 'private' && privateKey.asymmetricKeyType === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new Error('the private key must be an EC P-256 or Ed25519 private key');
}

const b64u = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * A fresh RFC 7523 §2.2 client assertion: iss = sub = client_id, aud = PAS's issuer, a new jti and a
 * short exp, so each login proves possession of the key anew and no assertion is worth stealing.
 * node:crypto signs it; PAS's IdP verifies it with jose.
 */
export function signClientAssertion(key: ClientKeyPair, audience: string, nowMs = Date.now()): string {
  const privateKey = key.privateKey instanceof KeyObject ? key.privateKey : KeyObject.from(key.privateKey);
  if (assertionAlgFor(privateKey) !== key.alg) throw new Error(`the private key does not sign ${key.alg}`);
  const iat = Math.floor(nowMs / 1000);
  const input = `${b64u({ alg: key.alg, kid: key.kid, typ: 'JWT' })}.${b64u({
    iss: key.clientId,
    sub: key.clientId,
    aud: audience,
    jti: randomUUID(),
    iat,
    exp: iat + ASSERTION_LIFETIME_SEC,
  })}`;
  // RFC 7518 §3.4: an ES256 signature is R || S (IEEE P1363), not DER. Ed25519 hashes internally.
  const signature = key.alg === 'ES256' ? sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }) : sign(null, Buffer.from(input), privateKey);
  return `${input}.${signature.toString('base64url')}`;
}
