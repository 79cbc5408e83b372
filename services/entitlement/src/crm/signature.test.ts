import { describe, expect, it } from 'vitest';
import { checkCrmSignature, crmSignature } from './signature.ts';

const secret = 'a-shared-secret-of-at-least-32-characters';
const rawBody = Buffer.from('{"id":"d-1"}');
const nowSec = 1_700_000_000;
const signed = (timestamp = String(nowSec), body = rawBody) => `v1=${crmSignature(secret, timestamp, body)}`;

describe('CRM webhook signatures (HMAC-SHA256 over "<timestamp>.<raw body>")', () => {
  it('accepts an authentic, fresh delivery, also among several v1 signatures', () => {
    expect(checkCrmSignature({ secret, timestamp: String(nowSec), signature: signed(), rawBody, nowSec })).toBeUndefined();
    expect(checkCrmSignature({ secret, timestamp: String(nowSec), signature: `v0=abc, v1=${'0'.repeat(64)}, ${signed()}`, rawBody, nowSec })).toBeUndefined();
    expect(checkCrmSignature({ secret, timestamp: String(nowSec - 300), signature: signed(String(nowSec - 300)), rawBody, nowSec })).toBeUndefined();
  });

  it('refuses a changed body, another secret, a moved timestamp, a stale or future one, and missing headers', () => {
    const check = (timestamp: string | undefined, signature: string | undefined, body = rawBody) => checkCrmSignature({ secret, timestamp, signature, rawBody: body, nowSec });
    expect(check(String(nowSec), signed(), Buffer.from('{"id":"d-2"}'))).toBe('no matching v1 signature');
    expect(check(String(nowSec), `v1=${crmSignature('another-secret', String(nowSec), rawBody)}`)).toBe('no matching v1 signature');
    expect(check(String(nowSec + 1), signed())).toBe('no matching v1 signature');
    expect(check(String(nowSec - 301), signed(String(nowSec - 301)))).toMatch(/timestamp/);
    expect(check(String(nowSec + 301), signed(String(nowSec + 301)))).toMatch(/timestamp/);
    expect(check(undefined, signed())).toMatch(/timestamp/);
    expect(check('12.5', signed())).toMatch(/timestamp/);
    expect(check(String(nowSec), undefined)).toBe('missing signature');
    expect(check(String(nowSec), 'v1=zz')).toBe('no matching v1 signature');
  });
});
