import { describe, expect, it } from 'vitest';
import { exportSPKI, SignJWT, UnsecuredJWT, type CryptoKey, type JWTPayload } from 'jose';
import { ACCESS_TOKEN_TYP, KeyRing, lowS, REFRESH_TOKEN_TYP, verifyAccessToken, verifyRefreshToken, type VerifySettings } from './index.ts';
import { ACCESS_AUDIENCE, codeOf, ISSUER, nowSec } from './test-fixtures.ts';

/** RFC 8725 (JWT Best Current Practices) at the library level: every way a token is refused has its own code. */

const refreshCheck: VerifySettings = { issuer: ISSUER, audience: ISSUER, clockToleranceSec: 30 };
const accessCheck: VerifySettings = { issuer: ISSUER, audience: ACCESS_AUDIENCE, clockToleranceSec: 30 };

function refreshClaims(overrides: JWTPayload = {}): JWTPayload {
  const iat = nowSec();
  return {
    iss: ISSUER,
    aud: ISSUER,
    sub: 'u-1',
    jti: 'jti-1',
    iat,
    nbf: iat,
    exp: iat + 3600,
    tid: 'acme',
    roles: ['full-control'],
    scope: 'feed:edr-events',
    client_id: 'keyway-importer',
    fid: 'family-1',
    ...overrides,
  };
}

/** Signed as PAS signs (low s), so that only the check under test can refuse it. */
async function sign(key: { kid: string; privateKey: CryptoKey }, claims: JWTPayload, typ = REFRESH_TOKEN_TYP, kid = key.kid): Promise<string> {
  return lowS(await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ, kid }).sign(key.privateKey));
}

describe('RFC 8725 verification matrix (verifyRefreshToken / verifyAccessToken)', () => {
  const ring = KeyRing.generate();
  const refreshCode = async (token: string) => codeOf(verifyRefreshToken(token, (await ring).localKeySet(), refreshCheck));

  it('accepts a well-formed refresh token signed by the active key', async () => {
    expect(await refreshCode(await sign((await ring).active(), refreshClaims()))).toBe('accepted');
  });

  it('§3.1: refuses an unsecured JWT (alg "none")', async () => {
    const unsecured = new UnsecuredJWT(refreshClaims()).encode();
    expect(unsecured.endsWith('.')).toBe(true);
    expect(await refreshCode(unsecured)).toBe('ERR_TOKEN_ALG');
  });

  it('§2.1/§3.1: refuses HS256 signed with the public key bytes as the HMAC secret (key confusion)', async () => {
    const active = (await ring).active();
    const pem = await exportSPKI(await crypto.subtle.importKey('jwk', active.publicJwk, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']));
    for (const secret of [new TextEncoder().encode(pem), new TextEncoder().encode(JSON.stringify(active.publicJwk))]) {
      const forged = await new SignJWT(refreshClaims()).setProtectedHeader({ alg: 'HS256', typ: REFRESH_TOKEN_TYP, kid: active.kid }).sign(secret);
      expect(await refreshCode(forged)).toBe('ERR_TOKEN_ALG');
    }
  });

  it('refuses a kid the key set does not hold, and a known kid over another key', async () => {
    const stranger = await KeyRing.generate();
    expect(await refreshCode(await sign(stranger.active(), refreshClaims()))).toBe('ERR_TOKEN_KID');
    expect(await refreshCode(await sign(stranger.active(), refreshClaims(), REFRESH_TOKEN_TYP, (await ring).active().kid))).toBe('ERR_TOKEN_SIGNATURE');
  });

  it('§3.8: refuses another issuer', async () => {
    expect(await refreshCode(await sign((await ring).active(), refreshClaims({ iss: 'https://evil.test' })))).toBe('ERR_TOKEN_CLAIM');
  });

  it('§3.9: refuses another audience', async () => {
    expect(await refreshCode(await sign((await ring).active(), refreshClaims({ aud: ACCESS_AUDIENCE })))).toBe('ERR_TOKEN_CLAIM');
  });

  it('refuses nbf in the future beyond the leeway', async () => {
    const iat = nowSec();
    expect(await refreshCode(await sign((await ring).active(), refreshClaims({ iat, nbf: iat + 120 })))).toBe('ERR_TOKEN_NOT_YET_VALID');
  });

  it('refuses an expired token', async () => {
    const iat = nowSec() - 7200;
    expect(await refreshCode(await sign((await ring).active(), refreshClaims({ iat, nbf: iat, exp: iat + 3600 })))).toBe('ERR_TOKEN_EXPIRED');
  });

  it('accepts clock skew within the leeway (exp 10 s ago, 30 s tolerance) and refuses it beyond (40 s ago)', async () => {
    const iat = nowSec() - 3600;
    const within = await sign((await ring).active(), refreshClaims({ iat, nbf: iat, exp: nowSec() - 10 }));
    const beyond = await sign((await ring).active(), refreshClaims({ iat, nbf: iat, exp: nowSec() - 40 }));
    expect(await refreshCode(within)).toBe('accepted');
    expect(await refreshCode(beyond)).toBe('ERR_TOKEN_EXPIRED');
  });

  it('refuses a token without a required claim', async () => {
    const { exp: _exp, ...withoutExp } = refreshClaims();
    expect(await refreshCode(await sign((await ring).active(), withoutExp))).toBe('ERR_TOKEN_CLAIM');
  });

  it('§3.11: refuses a refresh token whose typ is at+jwt (an access token presented as a refresh token), or has no typ', async () => {
    expect(await refreshCode(await sign((await ring).active(), refreshClaims(), ACCESS_TOKEN_TYP))).toBe('ERR_TOKEN_TYPE');
    const untyped = await new SignJWT(refreshClaims()).setProtectedHeader({ alg: 'ES256', kid: (await ring).active().kid }).sign((await ring).active().privateKey);
    expect(await refreshCode(untyped)).toBe('ERR_TOKEN_TYPE');
  });

  it('§3.11: refuses a refresh token used as an access token, even with the audience it carries', async () => {
    const refresh = await sign((await ring).active(), refreshClaims());
    const keys = (await ring).localKeySet();
    expect(await codeOf(verifyAccessToken(refresh, keys, accessCheck))).toBe('ERR_TOKEN_TYPE');
    expect(await codeOf(verifyAccessToken(refresh, keys, { ...accessCheck, audience: ISSUER }))).toBe('ERR_TOKEN_TYPE');
  });
});
