import { describe, expect, it } from 'vitest';
import { base32Decode, base32Encode, hotp, matchTotp, otpauthUri, secretOfOtpauthUri, totpAt, totpStep } from './totp.ts';

// RFC 6238 Appendix B: the SHA-1 seed is the ASCII "12345678901234567890"; 8-digit codes.
const SEED = Buffer.from('12345678901234567890');
const VECTORS: Array<[number, string]> = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
];

describe('TOTP (RFC 6238)', () => {
  it('matches the Appendix B test vectors (SHA-1)', () => {
    for (const [time, code] of VECTORS) expect(hotp(SEED, totpStep(time * 1000), 8)).toBe(code);
  });

  it('6-digit codes are the last six digits of the 8-digit ones (RFC 4226 §5.3 modulo)', () => {
    for (const [time, code] of VECTORS) expect(totpAt(SEED, totpStep(time * 1000))).toBe(code.slice(2));
  });

  it('accepts the previous, current and next step only, and answers which one', () => {
    const now = 1234567890 * 1000;
    const step = totpStep(now);
    expect(matchTotp(SEED, totpAt(SEED, step), now)).toBe(step);
    expect(matchTotp(SEED, totpAt(SEED, step - 1), now)).toBe(step - 1);
    expect(matchTotp(SEED, totpAt(SEED, step + 1), now)).toBe(step + 1);
    expect(matchTotp(SEED, totpAt(SEED, step - 2), now)).toBeUndefined();
    expect(matchTotp(SEED, totpAt(SEED, step + 2), now)).toBeUndefined();
    expect(matchTotp(SEED, '12345', now)).toBeUndefined();
    expect(matchTotp(SEED, `${totpAt(SEED, step)}0`, now)).toBeUndefined();
  });

  it('base32 (RFC 4648 §10 vectors) and the otpauth URI round-trip the secret', () => {
    expect(base32Encode(Buffer.from('foobar'))).toBe('MZXW6YTBOI');
    expect(base32Decode('MZXW6YTBOI').toString()).toBe('foobar');
    const uri = otpauthUri({ issuer: 'Keyway', account: 'op@vendor.example', secret: SEED });
    expect(uri).toMatch(/^otpauth:\/\/totp\/Keyway:op%40vendor\.example\?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Keyway&algorithm=SHA1&digits=6&period=30$/);
    expect(secretOfOtpauthUri(uri).equals(SEED)).toBe(true);
  });
});
