import { describe, expect, it } from 'vitest';
import { checkCrmSignature, crmSignature, crmSignatureHeader } from './signature.ts';

const secret = 'a-shared-secret-of-at-least-32-characters';
const rawBody = Buffer.from('{"customer":{"id":"c-1"}}');
const nowSec = 1_700_000_000;
const delivery = 'd-1';
const signed = (timestamp = String(nowSec), body = rawBody, id = delivery) => crmSignatureHeader(secret, timestamp, id, body);

describe('CRM webhook signatures (HMAC-SHA256 over "v2:<timestamp>:<delivery id>\\n<raw body>")', () => {
  it('accepts an authentic, fresh delivery, also among several v2 signatures', () => {
    expect(checkCrmSignature({ secret, timestamp: String(nowSec), delivery, signature: signed(), rawBody, nowSec })).toBeUndefined();
    expect(checkCrmSignature({ secret, timestamp: String(nowSec), delivery, signature: `v0=abc, v2=${'0'.repeat(64)}, ${signed()}`, rawBody, nowSec })).toBeUndefined();
    expect(checkCrmSignature({ secret, timestamp: String(nowSec - 300), delivery, signature: signed(String(nowSec - 300)), rawBody, nowSec })).toBeUndefined();
    // an id carried only in the (signed) body: the header part is empty
    expect(checkCrmSignature({ secret, timestamp: String(nowSec), signature: signed(String(nowSec), rawBody, ''), rawBody, nowSec })).toBeUndefined();
  });

  it('refuses a changed body, another secret, a moved timestamp, a stale or future one, and missing headers', () => {
    const check = (timestamp: string | undefined, signature: string | undefined, body = rawBody) => checkCrmSignature({ secret, timestamp, delivery, signature, rawBody: body, nowSec });
    expect(check(String(nowSec), signed(), Buffer.from('{"id":"d-2"}'))).toBe('no matching v2 signature');
    expect(check(String(nowSec), `v2=${crmSignature('another-secret', String(nowSec), delivery, rawBody)}`)).toBe('no matching v2 signature');
    expect(check(String(nowSec + 1), signed())).toBe('no matching v2 signature');
    expect(check(String(nowSec - 301), signed(String(nowSec - 301)))).toMatch(/timestamp/);
    expect(check(String(nowSec + 301), signed(String(nowSec + 301)))).toMatch(/timestamp/);
    expect(check(undefined, signed())).toMatch(/timestamp/);
    expect(check('12.5', signed())).toMatch(/timestamp/);
    expect(check(String(nowSec), undefined)).toBe('missing signature');
    expect(check(String(nowSec), 'v2=zz')).toBe('no matching v2 signature');
  });

  it('covers the delivery id: a captured delivery under another id, or without its id, does not verify', () => {
    const signature = signed();
    const under = (id: string | undefined) => checkCrmSignature({ secret, timestamp: String(nowSec), delivery: id, signature, rawBody, nowSec });
    expect(under(delivery)).toBeUndefined();
    expect(under('d-2')).toBe('no matching v2 signature');
    expect(under(undefined)).toBe('no matching v2 signature');
    expect(under('d-1\nx')).toBe('malformed delivery id');
  });

  it('refuses v1 signatures (timestamp and body only) with a reason that says why', () => {
    const v1 = `v1=${'a'.repeat(64)}`;
    expect(checkCrmSignature({ secret, timestamp: String(nowSec), delivery, signature: v1, rawBody, nowSec })).toMatch(/v1 .*delivery id/);
  });
});
