import { TokenError } from './errors.ts';

/** The order n of P-256 (SEC 2 §2.4.2), and n/2: the largest "low" s (BIP 62 / RFC 6979 practice). */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const P256_HALF_N = P256_N >> 1n;
/** RFC 7518 §3.4: an ES256 signature is R || S, 32 octets each. */
const ES256_HALF = 32;

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * RFC 7515 §2 / §7.1: each part of a compact JWS is base64url *without padding*. Decoders (jose's
 * among them) also take padding, the standard alphabet, whitespace and non-zero trailing bits, which
 * gives one token many spellings. Only the one spelling that re-encodes to itself is accepted, so
 * nothing keyed on a token string (a cache, a hash in the trail) can be sidestepped by re-encoding.
 */
export function requireCanonicalCompact(token: string): [string, string, string] {
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenError('ERR_TOKEN_MALFORMED', 'Invalid Compact JWS');
  for (const part of parts) {
    if (!BASE64URL.test(part) || Buffer.from(part, 'base64url').toString('base64url') !== part) {
      throw new TokenError('ERR_TOKEN_MALFORMED', 'JWS part is not in its canonical base64url encoding');
    }
  }
  return parts as [string, string, string];
}

const toBigInt = (bytes: Buffer) => BigInt(`0x${bytes.toString('hex') || '0'}`);
const toBytes32 = (n: bigint) => Buffer.from(n.toString(16).padStart(ES256_HALF * 2, '0'), 'hex');

/**
 * ECDSA signatures are malleable: (r, s) and (r, n - s) both verify. The tokens PAS signs always
 * carry the low s (lowS below), so a high s on one of them is someone's re-encoding: refused.
 */
export function requireLowS(signature: string): void {
  const bytes = Buffer.from(signature, 'base64url');
  if (bytes.length !== ES256_HALF * 2) throw new TokenError('ERR_TOKEN_SIGNATURE', 'ES256 signature must be 64 octets');
  if (toBigInt(bytes.subarray(ES256_HALF)) > P256_HALF_N) throw new TokenError('ERR_TOKEN_SIGNATURE', 'ES256 signature "s" value is not in the lower half of the order');
}

/** The same ES256 JWS with s replaced by n - s when s is high: still valid, and now the one accepted form. */
export function lowS(compact: string): string {
  const [header, payload, signature] = compact.split('.') as [string, string, string];
  const bytes = Buffer.from(signature, 'base64url');
  const s = toBigInt(bytes.subarray(ES256_HALF));
  if (s <= P256_HALF_N) return compact;
  const normalized = Buffer.concat([bytes.subarray(0, ES256_HALF), toBytes32(P256_N - s)]);
  return `${header}.${payload}.${normalized.toString('base64url')}`;
}
