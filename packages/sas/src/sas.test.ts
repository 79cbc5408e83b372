import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseSas, policyKey, SasError, signSas, verifySas } from './index.ts';

const resource = 'https://localhost:8445/tenants/acme/topics/edr-events';
const primary = 'primary-namespace-key-0123456789';
const secondary = 'secondary-namespace-key-9876543210';
const now = 1_800_000_000;

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof SasError) return err.code;
    throw err;
  }
  return 'no error';
};

describe('SAS keys (Azure Service Bus format)', () => {
  it('has the exact Azure shape and signs "<url-encoded uri>\\n<expiry>" with HMAC-SHA256', () => {
    const { sasKey } = signSas(primary, 'listen', resource, now + 86400);
    const match = /^SharedAccessSignature sr=([^&]+)&sig=([^&]+)&se=(\d+)&skn=listen$/.exec(sasKey);
    expect(match).not.toBeNull();
    expect(match![1]).toBe(encodeURIComponent(resource));
    expect(match![3]).toBe(String(now + 86400));
    const expected = createHmac('sha256', policyKey(primary, 'listen'))
      .update(`${encodeURIComponent(resource)}\n${now + 86400}`)
      .digest('base64');
    expect(decodeURIComponent(match![2]!)).toBe(expected);
  });

  it('verifies with the primary or the secondary key', () => {
    const a = signSas(primary, 'listen', resource, now + 60).sasKey;
    const b = signSas(secondary, 'listen', resource, now + 60).sasKey;
    for (const key of [a, b]) {
      expect(verifySas(key, { resource, right: 'listen', keys: [primary, secondary], nowSec: now }).keyName).toBe('listen');
    }
  });

  it('refuses expired, tampered, foreign-resource and under-privileged keys with distinct codes', () => {
    const opts = { resource, keys: [primary, secondary], nowSec: now };
    const listen = signSas(primary, 'listen', resource, now + 60).sasKey;
    expect(codeOf(() => verifySas(signSas(primary, 'listen', resource, now - 1).sasKey, { ...opts, right: 'listen' }))).toBe('ERR_SAS_EXPIRED');
    expect(codeOf(() => verifySas(listen.replace('se=', 'se=9'), { ...opts, right: 'listen' }))).toBe('ERR_SAS_SIGNATURE');
    expect(codeOf(() => verifySas(listen.replace('skn=listen', 'skn=listen-send'), { ...opts, right: 'send' }))).toBe('ERR_SAS_SIGNATURE');
    expect(codeOf(() => verifySas(listen, { ...opts, right: 'send' }))).toBe('ERR_SAS_RIGHTS');
    const other = signSas(primary, 'listen', resource.replace('acme', 'globex'), now + 60).sasKey;
    expect(codeOf(() => verifySas(other, { ...opts, right: 'listen' }))).toBe('ERR_SAS_RESOURCE');
    expect(codeOf(() => verifySas(listen, { ...opts, keys: ['another-tenant-key'], right: 'listen' }))).toBe('ERR_SAS_SIGNATURE');
  });

  it('refuses malformed headers', () => {
    for (const bad of ['Bearer abc', 'SharedAccessSignature sr=x', 'SharedAccessSignature sr=a&sig=b&se=soon&skn=listen', 'SharedAccessSignature sr=%E0%A4%A&sig=b&se=1&skn=listen', 'SharedAccessSignature sr=a&sr=b&sig=c&se=1&skn=listen']) {
      expect(codeOf(() => parseSas(bad))).toBe('ERR_SAS_MALFORMED');
    }
  });
});
