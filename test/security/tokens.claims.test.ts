import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { Discovery } from '@keyway/contracts';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL });
});
afterAll(() => suite?.close());

describe('PAS token issuance (grant_type=password)', () => {
  it('issues a 20-minute access JWT and a 14-day refresh JWT that verify against the published JWKS', async () => {
    const { tenant, email, user } = await provisionTenant(suite);
    const response = await suite.pas.password(email, PASSWORD);
    expect(response).toMatchObject({ token_type: 'Bearer', expires_in: 1200, refresh_expires_in: 1209600, scope: 'feed:edr-events' });

    const jwks = createLocalJWKSet(await suite.pas.jwks());
    const access = await jwtVerify(response.access_token, jwks, { issuer: suite.urls.pas, audience: suite.urls.pac, algorithms: ['ES256'], typ: 'at+jwt' });
    expect(access.payload).toMatchObject({ iss: suite.urls.pas, aud: suite.urls.pac, sub: user.id, tid: tenant, roles: ['full-control'] });
    expect(access.payload.exp! - access.payload.iat!).toBe(1200);
    expect(access.payload.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(access.protectedHeader.kid).toBeTruthy();

    const refresh = await jwtVerify(response.refresh_token, jwks, { issuer: suite.urls.pas, audience: suite.urls.pas, algorithms: ['ES256'], typ: 'rt+jwt' });
    expect(refresh.payload).toMatchObject({ sub: user.id, tid: tenant });
    expect(refresh.payload.exp! - refresh.payload.iat!).toBe(1209600);
    expect(refresh.payload.fid).toBeTruthy();
    expect(refresh.payload.jti).not.toBe(access.payload.jti);
  });

  it('publishes a discovery document (RFC 8414) whose jwks_uri serves the signing keys', async () => {
    const discovery = Discovery.parse(await suite.pas.discovery());
    expect(discovery.issuer).toBe(suite.urls.pas);
    expect(discovery.token_endpoint).toBe(`${suite.urls.pas}/oauth2/token`);
    expect(discovery.grant_types_supported).toContain('password');
    expect(discovery.jwks_uri).toBe(`${suite.urls.pas}/.well-known/jwks.json`);
    const { keys } = await suite.pas.jwks();
    expect(keys.length).toBeGreaterThanOrEqual(1);
    for (const key of keys) {
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(key).not.toHaveProperty('d');
    }
  });

  it('answers token requests with Cache-Control: no-store', async () => {
    const { email } = await provisionTenant(suite);
    const response = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'password', username: email, password: PASSWORD }), { headers: FORM });
    expect(response.status).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers.pragma).toBe('no-cache');
  });
});
