import { generateKeyPairSync, verify, webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { assertionAlgFor, signClientAssertion } from './client-assertion.ts';

const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;

describe('the RFC 7523 client assertion (importer, CLI)', () => {
  it.each([
    ['ES256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }), { dsaEncoding: 'ieee-p1363' as const }, 'sha256'],
    ['EdDSA', () => generateKeyPairSync('ed25519'), {}, null],
  ] as const)('signs %s with iss = sub = client_id, the audience, a fresh jti and a one-minute exp', (alg, generate, options, digest) => {
    const { privateKey, publicKey } = generate();
    expect(assertionAlgFor(privateKey)).toBe(alg);
    const nowMs = 1_700_000_000_000;
    const first = signClientAssertion({ clientId: 'user-1', privateKey, kid: 'k1', alg }, 'https://pas.test', nowMs);
    const second = signClientAssertion({ clientId: 'user-1', privateKey, kid: 'k1', alg }, 'https://pas.test', nowMs);
    const [header, payload, signature] = first.split('.') as [string, string, string];
    expect(decode(header)).toEqual({ alg, kid: 'k1', typ: 'JWT' });
    expect(decode(payload)).toMatchObject({ iss: 'user-1', sub: 'user-1', aud: 'https://pas.test', iat: 1_700_000_000, exp: 1_700_000_060 });
    expect(decode(payload).jti).not.toBe(decode(second.split('.')[1]!).jti);
    expect(verify(digest, Buffer.from(`${header}.${payload}`), { key: publicKey, ...options }, Buffer.from(signature, 'base64url'))).toBe(true);
  });

  it('takes a WebCrypto key as well, and refuses a key that does not match the algorithm', async () => {
    const pair = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    expect(signClientAssertion({ clientId: 'u', privateKey: pair.privateKey, kid: 'k', alg: 'ES256' }, 'https://pas.test').split('.')).toHaveLength(3);
    expect(() => signClientAssertion({ clientId: 'u', privateKey: pair.privateKey, kid: 'k', alg: 'EdDSA' }, 'https://pas.test')).toThrow('does not sign EdDSA');
    expect(() => assertionAlgFor(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey)).toThrow('EC P-256 or Ed25519');
  });
});
