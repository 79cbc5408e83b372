import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, exportSPKI, SignJWT, UnsecuredJWT, type JWTHeaderParameters, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '@keyway/kit';
import { loadKeyRing } from '@keyway/pas';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { KeyRing, lowS, TokenError, verifyAccessToken, type SigningKey } from '@keyway/tokens';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

/**
 * RFC 8725 (JWT Best Current Practices) at PAC's POST /v1/sas, the consumer of refresh tokens.
 * Edge cases are real refresh tokens re-signed with PAS's own key (loaded from PAS's store) with one
 * thing changed, so the signature is valid and only the property under test is wrong. Each keeps
 * the original jti and family, so a token that passes PAC's checks is also current at PAS.
 * The public answer is the same for every refusal on purpose; which check refused is asserted on the
 * stable TokenError code PAC records as the refusal's detail (by request id), so no case passes
 * for an incidental reason.
 */

let suite: Suite;
const pacLog: Array<{ msg: string; requestId?: string; detail?: string }> = [];
let activeKey: SigningKey;
let original: JWTPayload;
let accessToken: string;
let refreshToken: string;
const nowSec = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  suite = await startSuite({
    redisUrl: REDIS_URL,
    logger: (service) => (service === 'pac' ? createLogger({ service, level: 'info', write: (line) => pacLog.push(JSON.parse(line)) }) : silentLogger),
  });
  const { email } = await provisionTenant(suite);
  const tokens = await suite.pas.password(email, PASSWORD);
  accessToken = tokens.access_token;
  refreshToken = tokens.refresh_token;
  original = decodeJwt(refreshToken);
  activeKey = (await loadKeyRing(suite.records.pas, suite.kek)).active();
});
afterAll(() => suite?.close());

/** The original refresh token's claims with `claims` changed, signed by PAS's active key as PAS signs (low s). */
async function resign(claims: JWTPayload = {}, header: Partial<JWTHeaderParameters> = {}): Promise<string> {
  return lowS(await new SignJWT({ ...original, ...claims }).setProtectedHeader({ alg: 'ES256', typ: 'rt+jwt', kid: activeKey.kid, ...header }).sign(activeKey.privateKey));
}

const askForSas = (token: string, requestId = randomUUID()) => rawClient(suite, 'pac').post('/v1/sas', { refresh_token: token, rights: 'listen' }, { headers: { 'x-request-id': requestId } });

async function expectRefused(token: string, code: string) {
  const requestId = randomUUID();
  const response = await askForSas(token, requestId);
  expect(response.status).toBe(401);
  expect(response.data.error).toBe('invalid_token');
  expect(typeof response.data.error_description).toBe('string');
  expect(response.data.error_description.length).toBeGreaterThan(0);
  expect(pacLog.find((line) => line.requestId === requestId && line.msg === 'request refused')?.detail).toBe(code);
}

describe('RFC 8725: PAC refuses every refresh token it must not trust (401 invalid_token)', () => {
  it('accepts the unmodified token and an exact re-signing of it (the baseline the cases below change)', async () => {
    expect((await askForSas(refreshToken)).status).toBe(200);
    expect((await askForSas(await resign())).status).toBe(200);
  });

  it('§3.1: refuses an unsecured JWT (alg "none")', async () => {
    await expectRefused(new UnsecuredJWT({ ...original }).encode(), 'ERR_TOKEN_ALG');
  });

  it('§2.1/§3.1: refuses HS256 with the PAS public key bytes as the HMAC secret (key confusion)', async () => {
    const publicKey = await crypto.subtle.importKey('jwk', activeKey.publicJwk, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
    const pem = await exportSPKI(publicKey);
    for (const secret of [new TextEncoder().encode(pem), new TextEncoder().encode(JSON.stringify(activeKey.publicJwk))]) {
      const forged = await new SignJWT({ ...original }).setProtectedHeader({ alg: 'HS256', typ: 'rt+jwt', kid: activeKey.kid }).sign(secret);
      await expectRefused(forged, 'ERR_TOKEN_ALG');
    }
  });

  it('refuses an unknown kid', async () => {
    const stranger = (await KeyRing.generate()).active();
    await expectRefused(await new SignJWT({ ...original }).setProtectedHeader({ alg: 'ES256', typ: 'rt+jwt', kid: stranger.kid }).sign(stranger.privateKey), 'ERR_TOKEN_KID');
  });

  it('§3.8: refuses a wrong iss', async () => {
    await expectRefused(await resign({ iss: 'https://pas.evil.example' }), 'ERR_TOKEN_CLAIM');
  });

  it('§3.9: refuses a wrong aud (the access-token audience, PAC itself)', async () => {
    await expectRefused(await resign({ aud: suite.urls.pac }), 'ERR_TOKEN_CLAIM');
  });

  it('refuses nbf in the future beyond the leeway', async () => {
    await expectRefused(await resign({ nbf: nowSec() + 120 }), 'ERR_TOKEN_NOT_YET_VALID');
  });

  it('refuses an expired token', async () => {
    await expectRefused(await resign({ exp: nowSec() - 3600 }), 'ERR_TOKEN_EXPIRED');
  });

  it('accepts clock skew within the configured leeway (exp 10 s ago, 30 s tolerance) and refuses it beyond (40 s ago)', async () => {
    const within = await askForSas(await resign({ exp: nowSec() - 10 }));
    expect(within.status).toBe(200);
    expect(within.data.sas_key).toMatch(/^SharedAccessSignature /);
    await expectRefused(await resign({ exp: nowSec() - 40 }), 'ERR_TOKEN_EXPIRED');
  });

  it('§3.11: refuses a refresh token whose typ is at+jwt, and a real access token, as refresh tokens', async () => {
    await expectRefused(await resign({}, { typ: 'at+jwt' }), 'ERR_TOKEN_TYPE');
    await expectRefused(accessToken, 'ERR_TOKEN_TYPE');
  });

  it('§3.11: refuses a refresh token used as an access token (verifyAccessToken), whatever audience is asked', async () => {
    const keys = createLocalJWKSet(await suite.pas.jwks());
    for (const audience of [suite.urls.pac, suite.urls.pas]) {
      const refused = await verifyAccessToken(refreshToken, keys, { issuer: suite.urls.pas, audience, clockToleranceSec: 30 }).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(TokenError);
      expect((refused as TokenError).code).toBe('ERR_TOKEN_TYPE');
    }
    await expect(verifyAccessToken(accessToken, keys, { issuer: suite.urls.pas, audience: suite.urls.pac, clockToleranceSec: 30 })).resolves.toMatchObject({
      sub: original.sub,
    });
  });
});
