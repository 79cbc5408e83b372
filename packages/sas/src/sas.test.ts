import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sasReencodings as reencodings } from '@keyway/testkit/reencode';
import { parseSas, policyKey, SasError, sasKeyId, signSas, verifySas } from './index.ts';

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
    for (const bad of [
      'Bearer abc',
      'SharedAccessSignature sr=x',
      'SharedAccessSignature sr=a&sig=b&se=soon&skn=listen',
      'SharedAccessSignature sr=%E0%A4%A&sig=b&se=1&skn=listen',
      'SharedAccessSignature sr=a&sr=b&sig=c&se=1&skn=listen',
    ]) {
      expect(codeOf(() => parseSas(bad))).toBe('ERR_SAS_MALFORMED');
    }
  });
});

describe('issue 9: a re-encoded SAS key is refused (one spelling per key)', () => {
  // A signature holding "+" or "/" and padding, so every re-encoding applies.
  let expiry = now + 3600;
  while (!/[+/]/.test(signSas(primary, 'listen-send', resource, expiry).sasKey.split('sig=')[1]!.split('&')[0]!.replace(/%2B/g, '+').replace(/%2F/g, '/'))) expiry += 1;
  const { sasKey, keyId } = signSas(primary, 'listen-send', resource, expiry);
  const opts = { resource, right: 'send' as const, keys: [primary, secondary], nowSec: now };

  it('verifies the key as issued, with the id it was issued under', () => {
    expect(verifySas(sasKey, opts).keyId).toBe(keyId);
  });

  for (const [spelling, variant] of Object.entries(reencodings(sasKey))) {
    it(`refuses the ${spelling} spelling as malformed`, () => {
      expect(variant).not.toBe(sasKey);
      expect(codeOf(() => verifySas(variant, opts))).toBe('ERR_SAS_MALFORMED');
    });
  }

  it('derives the key id from the signature bytes, not from their spelling', () => {
    const bytes = Buffer.from(decodeURIComponent(sasKey.split('sig=')[1]!.split('&')[0]!), 'base64');
    expect(sasKeyId(bytes)).toBe(keyId);
    expect(sasKeyId(new Uint8Array(bytes))).toBe(keyId);
  });

  it('refuses unknown fields and whitespace around the fields', () => {
    expect(codeOf(() => verifySas(`${sasKey}&foo=bar`, opts))).toBe('ERR_SAS_MALFORMED');
    expect(codeOf(() => verifySas(sasKey.replace('SharedAccessSignature ', 'SharedAccessSignature  '), opts))).toBe('ERR_SAS_MALFORMED');
    expect(codeOf(() => verifySas(`${sasKey} `, opts))).toBe('ERR_SAS_MALFORMED');
  });
});

describe('issue 12: the fast paths of parsing accept and refuse exactly what decoding and encoding again would', () => {
  const opts = { right: 'listen' as const, keys: [primary], nowSec: now };
  const withField = (key: string, name: string, raw: string) => key.replace(new RegExp(`${name}=[^&]*`), `${name}=${raw}`);

  it('a resource with reserved ASCII, a "%" and non-ASCII characters verifies as issued', () => {
    for (const other of [`${resource}?a=b&c=d;e@f[g]^h\`|{}~!*'()`, `${resource}/caf\u00e9/100%25`, `${resource}/\u{1F600}`]) {
      const { sasKey } = signSas(primary, 'listen', other, now + 60);
      expect(verifySas(sasKey, { ...opts, resource: other }).resource).toBe(other);
    }
  });

  it('refuses escapes encodeURIComponent never writes: of unreserved characters (~ included), lower-case, broken', () => {
    const { sasKey } = signSas(primary, 'listen', resource, now + 60);
    const sr = encodeURIComponent(resource);
    for (const raw of [sr.replace('edr', '%65dr'), `${sr}%7E`, sr.replace('%3A', '%3a'), `${sr}%2`, `${sr}%E0%A4%A`, `${sr}%ED%A0%80`]) {
      expect(codeOf(() => parseSas(withField(sasKey, 'sr', raw)))).toBe('ERR_SAS_MALFORMED');
    }
  });

  it('refuses a signature whose padding bits are not zero, or that is not 32 bytes, however it is spelled', () => {
    const { sasKey } = signSas(primary, 'listen', resource, now + 60);
    const sig = decodeURIComponent(/sig=([^&]*)/.exec(sasKey)![1]!);
    const last = sig.at(-2)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const paddingBitsSet = `${sig.slice(0, -2)}${alphabet[alphabet.indexOf(last) + 1]}=`;
    for (const bad of [paddingBitsSet, `${sig.slice(0, -1)}`, `A${sig}`, sig.replace('=', '')]) {
      expect(codeOf(() => parseSas(withField(sasKey, 'sig', encodeURIComponent(bad))))).toBe('ERR_SAS_MALFORMED');
    }
    // the canonical signature with its escapes in lower case is another spelling
    expect(codeOf(() => parseSas(withField(sasKey, 'sig', encodeURIComponent(sig).replace(/%3D$/, '%3d'))))).toBe('ERR_SAS_MALFORMED');
  });
});
