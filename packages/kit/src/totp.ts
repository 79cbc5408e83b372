import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * RFC 6238 TOTP as every authenticator app implements it (RFC 4226 HOTP over HMAC-SHA-1, 6 digits,
 * 30-second steps from the Unix epoch). The IdP verifies with it; the CLI, the dev launcher and the
 * tests compute codes with it.
 */
export const TOTP_PERIOD_SEC = 30;
const TOTP_DIGITS = 6;
/** RFC 4226 §4 R6: at least 128 bits, 160 recommended (the HMAC-SHA-1 block). */
const SECRET_BYTES = 20;

/** RFC 6238 §4.2: T = floor((now - T0) / X), T0 = 0, X = 30 s. */
export const totpStep = (nowMs: number): number => Math.floor(nowMs / 1000 / TOTP_PERIOD_SEC);

/** RFC 4226 §5.3: HMAC over the 8-byte big-endian counter, dynamic truncation, modulo 10^digits. */
export function hotp(secret: Uint8Array, counter: number, digits = TOTP_DIGITS, algorithm: 'sha1' | 'sha256' | 'sha512' = 'sha1'): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(algorithm, secret).update(message).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

export const totpAt = (secret: Uint8Array, step: number): string => hotp(secret, step);

/**
 * The step within ±`window` of now whose code is `code`, or undefined. Every candidate is computed
 * and compared in constant time, so the answer's timing does not tell which step (if any) matched.
 */
export function matchTotp(secret: Uint8Array, code: string, nowMs: number, window = 1): number | undefined {
  if (!/^[0-9]{6}$/.test(code)) return undefined;
  const presented = Buffer.from(code);
  const now = totpStep(nowMs);
  let found: number | undefined;
  for (let step = now - window; step <= now + window; step++) {
    if (timingSafeEqual(presented, Buffer.from(totpAt(secret, step)))) found ??= step;
  }
  return found;
}

export const newTotpSecret = (): Buffer => randomBytes(SECRET_BYTES);

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 §6 without padding, as otpauth:// URIs carry the secret. */
export function base32Encode(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

export function base32Decode(text: string): Buffer {
  const clean = text.toUpperCase().replace(/=+$/, '').replace(/\s+/g, '');
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const char of clean) {
    const index = BASE32.indexOf(char);
    if (index < 0) throw new Error('not base32 (RFC 4648 §6)');
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The Key Uri Format authenticator apps read (Google Authenticator's, the de facto standard). */
export function otpauthUri(options: { issuer: string; account: string; secret: Uint8Array }): string {
  const label = `${encodeURIComponent(options.issuer)}:${encodeURIComponent(options.account)}`;
  const query = new URLSearchParams({ secret: base32Encode(options.secret), issuer: options.issuer, algorithm: 'SHA1', digits: String(TOTP_DIGITS), period: String(TOTP_PERIOD_SEC) });
  return `otpauth://totp/${label}?${query}`;
}

/** The secret of an otpauth:// URI (what a person scans), for tools that compute codes themselves. */
export function secretOfOtpauthUri(uri: string): Buffer {
  const secret = new URL(uri).searchParams.get('secret');
  if (!secret) throw new Error('the otpauth URI has no secret');
  return base32Decode(secret);
}
