import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueAccessToken, issueRefreshToken, KeyRing, type TokenSettings } from '@keyway/tokens';
import { loadKeyRing } from '@keyway/pas';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

let suite: Suite;
let settings: TokenSettings;
const subject = { sub: 'u-1', tid: 'acme', roles: ['full-control'], scope: 'feed:edr-events', client_id: 'keyway-importer' };

beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL });
  settings = { issuer: suite.urls.pas, accessAudience: suite.urls.pac, refreshAudience: suite.urls.pas, accessTtlSec: 1200, refreshTtlSec: 1_209_600, clockToleranceSec: 30 };
});
afterAll(() => suite?.close());

const askForSas = (refreshToken: string) => rawClient(suite, 'pac').post('/v1/sas', { refresh_token: refreshToken, rights: 'listen' });

describe('PAC trades only valid refresh tokens for SAS keys', () => {
  it('mints a SAS key for the tenant’s feed, valid one day, from a PAS refresh token', async () => {
    const { tenant, email } = await provisionTenant(suite);
    const tokens = await suite.pas.password(email, PASSWORD);
    const before = Math.floor(Date.now() / 1000);
    const response = await askForSas(tokens.refresh_token);
    expect(response.status).toBe(200);
    expect(response.data.resource).toBe(`${suite.urls.topic}/tenants/${tenant}/topics/edr-events`);
    const se = Number(/&se=(\d+)&/.exec(response.data.sas_key)![1]);
    expect(se - before).toBeGreaterThanOrEqual(86_400);
    expect(se - before).toBeLessThanOrEqual(86_401);
    expect(Date.parse(response.data.expires_at) / 1000).toBe(se);
  });

  it('refuses garbage, expired, wrongly signed and access-type tokens with 401 and an OAuth error body', async () => {
    const pasRing = await loadKeyRing(suite.records.pas, suite.kek);
    const strangerRing = await KeyRing.generate();
    const expired = await issueRefreshToken(pasRing.signer(), { ...settings, now: () => Date.now() - 1_209_700_000 }, { ...subject, fid: 'f-1' });
    const foreign = await issueRefreshToken(strangerRing.signer(), settings, { ...subject, fid: 'f-2' });
    const access = await issueAccessToken(pasRing.signer(), settings, subject);
    const accessWithPasAudience = await issueAccessToken(pasRing.signer(), { ...settings, accessAudience: suite.urls.pas }, subject);

    for (const [name, presented] of [
      ['garbage', 'not-a-jwt'],
      ['expired', expired.token],
      ['wrongly signed', foreign.token],
      ['access token', access.token],
      ['access token with the refresh audience', accessWithPasAudience.token],
    ] as const) {
      const response = await askForSas(presented);
      expect({ name, status: response.status, error: response.data.error }).toEqual({ name, status: 401, error: 'invalid_token' });
      expect(response.data.error_description).toBeTruthy();
    }
  });

  it('refuses resources outside the token’s tenant and feeds (403 insufficient_scope)', async () => {
    const { tenant, email } = await provisionTenant(suite, { feeds: ['edr-events', 'dns-logs'] });
    const tokens = await suite.pas.password(email, PASSWORD, 'feed:edr-events');
    for (const resource of [`${suite.urls.topic}/tenants/someone-else/topics/edr-events`, `${suite.urls.topic}/tenants/${tenant}/topics/dns-logs`]) {
      const response = await rawClient(suite, 'pac').post('/v1/sas', { refresh_token: tokens.refresh_token, resource });
      expect(response.status).toBe(403);
      expect(response.data.error).toBe('insufficient_scope');
    }
    const granted = await rawClient(suite, 'pac').post('/v1/sas', { refresh_token: tokens.refresh_token, resource: `${suite.urls.topic}/tenants/${tenant}/topics/edr-events` });
    expect(granted.status).toBe(200);
  });
});
