import { describe, expect, it } from 'vitest';
import { decodeProtectedHeader, decodeJwt } from 'jose';
import { issueAccessToken, issueRefreshToken, KeyRing, verifyAccessToken, verifyRefreshToken } from './index.ts';
import { codeOf, subject, testSettings } from './test-fixtures.ts';

const settings = testSettings();
const accessCheck = { issuer: settings.issuer, audience: settings.accessAudience, clockToleranceSec: 30 };
const refreshCheck = { issuer: settings.issuer, audience: settings.refreshAudience, clockToleranceSec: 30 };

describe('access and refresh tokens', () => {
  it('issue with the fixed lifetimes, kid and typ, and verify against the published keys', async () => {
    const ring = await KeyRing.generate();
    const access = await issueAccessToken(ring, settings, subject);
    const refresh = await issueRefreshToken(ring, settings, { ...subject, fid: 'family-1' });
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
    const access = await issueAccessToken(ring, settings, subject);
    const refresh = await issueRefreshToken(ring, settings, { ...subject, fid: 'f' });
    expect(await codeOf(verifyRefreshToken(access.token, ring.localKeySet(), refreshCheck))).toBe('ERR_TOKEN_TYPE');
    expect(await codeOf(verifyAccessToken(refresh.token, ring.localKeySet(), { ...accessCheck, audience: settings.refreshAudience }))).toBe('ERR_TOKEN_TYPE');
  });

  it('refuses expired tokens, other issuers and keys it does not know', async () => {
    const ring = await KeyRing.generate();
    const old = await issueAccessToken(ring, { ...settings, now: () => Date.now() - 1300_000 }, subject);
    expect(decodeJwt(old.token).exp).toBeLessThan(Date.now() / 1000);
    expect(await codeOf(verifyAccessToken(old.token, ring.localKeySet(), accessCheck))).toBe('ERR_TOKEN_EXPIRED');
    const fresh = await issueAccessToken(ring, settings, subject);
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
