import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeProtectedHeader, decodeJwt, importJWK, type CryptoKey, type JWK } from 'jose';
import { jwtReencodings, withNegatedS } from '@keyway/testkit/reencode';
import { issueAccessToken, issueRefreshToken, KeyRing, verifyAccessToken, verifyRefreshToken, type Signer } from './index.ts';
import { codeOf, subject, testSettings } from './test-fixtures.ts';

const settings = testSettings();
const accessCheck = { issuer: settings.issuer, audience: settings.accessAudience, clockToleranceSec: 30 };
const refreshCheck = { issuer: settings.issuer, audience: settings.refreshAudience, clockToleranceSec: 30 };

describe('access and refresh tokens', () => {
  it('issue with the fixed lifetimes, kid and typ, and verify against the published keys', async () => {
    const ring = await KeyRing.generate();
    const access = await issueAccessToken(ring.signer(), settings, subject);
    const refresh = await issueRefreshToken(ring.signer(), settings, { ...subject, fid: 'family-1' });
    expect(access.exp - access.iat).toBe(1200);
    expect(refresh.exp - refresh.iat).toBe(1209600);
    expect(decodeProtectedHeader(access.token)).toMatchObject({ alg: 'ES256', typ: 'at+jwt', kid: ring.active().kid });
    expect(decodeProtectedHeader(refresh.token)).toMatchObject({ alg: 'ES256', typ: 'rt+jwt', kid: ring.active().kid });
    const claims = await verifyAccessToken(access.token, ring.localKeySet(), accessCheck);
    expect(claims).toMatchObject({ iss: 'https://pas.test', aud: 'https://pac.test', sub: 'u1', tid: 'acme', jti: access.jti });
    expect((await verifyRefreshToken(refresh.token, ring.localKeySet(), refreshCheck)).fid).toBe('family-1');
  });

  it('keeps access and refresh tokens from standing in for each other', async () => {
    const ring = await KeyRing.generate();
    const access = await issueAccessToken(ring.signer(), settings, subject);
    const refresh = await issueRefreshToken(ring.signer(), settings, { ...subject, fid: 'f' });
    expect(await codeOf(verifyRefreshToken(access.token, ring.localKeySet(), refreshCheck))).toBe('ERR_TOKEN_TYPE');
    expect(await codeOf(verifyAccessToken(refresh.token, ring.localKeySet(), { ...accessCheck, audience: settings.refreshAudience }))).toBe('ERR_TOKEN_TYPE');
  });

  it('refuses expired tokens, other issuers and keys it does not know', async () => {
    const ring = await KeyRing.generate();
    const old = await issueAccessToken(ring.signer(), { ...settings, now: () => Date.now() - 1300_000 }, subject);
    expect(decodeJwt(old.token).exp).toBeLessThan(Date.now() / 1000);
    expect(await codeOf(verifyAccessToken(old.token, ring.localKeySet(), accessCheck))).toBe('ERR_TOKEN_EXPIRED');
    const fresh = await issueAccessToken(ring.signer(), settings, subject);
    expect(await codeOf(verifyAccessToken(fresh.token, ring.localKeySet(), { ...accessCheck, issuer: 'https://evil.test' }))).toBe('ERR_TOKEN_CLAIM');
    const stranger = await KeyRing.generate();
    expect(await codeOf(verifyAccessToken(fresh.token, stranger.localKeySet(), accessCheck))).toBe('ERR_TOKEN_KID');
  });

  it('rotation publishes the next key before it signs and keeps the old one until its tokens expire', async () => {
    const ring = await KeyRing.generate(0);
    const first = ring.active().kid;
    await ring.rotate(1000, 0);
    const published = ring.jwks(1).keys.map((k) => k.kid);
    expect(published).toContain(first);
    expect(published).toContain(ring.active().kid);
    expect(published).toHaveLength(3);
    expect(ring.jwks(2000).keys.map((k) => k.kid)).not.toContain(first);
    const restored = await KeyRing.deserialize(await ring.serialize());
    expect(restored.active().kid).toBe(ring.active().kid);
  });
});

describe('issue 9: one spelling per token (a re-encoded token is refused, whatever it is keyed on)', () => {
  const P256_HALF_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n >> 1n;
  const sOf = (jws: string) => BigInt(`0x${Buffer.from(jws.split('.')[2]!, 'base64url').subarray(32).toString('hex')}`);

  it('refuses every other base64url spelling of a genuine refresh token as malformed', async () => {
    const ring = await KeyRing.generate();
    const { token } = await issueRefreshToken(ring.signer(), settings, { ...subject, fid: 'family-1' });
    expect(await codeOf(verifyRefreshToken(token, ring.localKeySet(), refreshCheck))).toBe('accepted');
    const variants = Object.entries(jwtReencodings(token));
    expect(variants.length).toBeGreaterThanOrEqual(3);
    for (const [spelling, variant] of variants) {
      expect({ spelling, code: await codeOf(verifyRefreshToken(variant, ring.localKeySet(), refreshCheck)) }).toEqual({ spelling, code: 'ERR_TOKEN_MALFORMED' });
    }
  });

  it('issues ES256 signatures with a low s only, and refuses the high-s twin (s replaced by n - s)', async () => {
    const ring = await KeyRing.generate();
    for (let i = 0; i < 16; i += 1) {
      const { token } = await issueAccessToken(ring.signer(), settings, subject);
      expect(sOf(token) <= P256_HALF_N).toBe(true);
      const twin = withNegatedS(token);
      // the twin is a valid ECDSA signature over the same content
      const [h, p] = token.split('.');
      const publicKey = await importJWK(ring.active().publicJwk, 'ES256');
      const raw = Buffer.from(twin.split('.')[2]!, 'base64url');
      expect(await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, publicKey as CryptoKey, raw, Buffer.from(`${h}.${p}`))).toBe(true);
      expect(await codeOf(verifyAccessToken(twin, ring.localKeySet(), accessCheck))).toBe('ERR_TOKEN_SIGNATURE');
    }
  });

  it('sign through the Signer seam: a key outside the ring (as a KMS holds it) issues tokens the one verifier accepts', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const remote = (encoding: 'ieee-p1363' | 'der'): Signer => ({
      kid: 'kms-1',
      alg: 'ES256',
      publicJwk: publicKey.export({ format: 'jwk' }) as JWK,
      sign: async (input) => sign('sha256', input, { key: privateKey, dsaEncoding: encoding }),
    });
    const keys = createLocalJWKSet({ keys: [{ ...remote('ieee-p1363').publicJwk, kid: 'kms-1', alg: 'ES256' }] });
    const access = await issueAccessToken(remote('ieee-p1363'), settings, subject);
    expect(decodeProtectedHeader(access.token)).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: 'kms-1' });
    expect((await verifyAccessToken(access.token, keys, accessCheck)).jti).toBe(access.jti);
    // A KMS answers ECDSA in DER: its adapter must convert it, or issuance fails rather than minting a token no verifier accepts.
    await expect(issueAccessToken(remote('der'), settings, subject)).rejects.toThrow('not an ES256 JWS signature');
  });
});
