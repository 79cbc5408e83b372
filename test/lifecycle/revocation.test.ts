import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

const REVOCATION_BUDGET_MS = 5000;

async function grantedAccess(suite: Suite, options?: Parameters<typeof provisionTenant>[1]) {
  const t = await provisionTenant(suite, options);
  const tokens = await suite.pas.password(t.email, PASSWORD);
  const sas = await suite.pac.sas({ refresh_token: tokens.refresh_token, rights: 'listen-send' });
  await suite.topic.publish(sas.sas_key, makeBatch(t.tenant, t.feed, 1));
  return { ...t, tokens, sas };
}

const publishStatus = async (suite: Suite, t: Awaited<ReturnType<typeof grantedAccess>>) =>
  (await rawClient(suite, 'topic').post(`/tenants/${t.tenant}/topics/${t.feed}/messages`, makeBatch(t.tenant, t.feed, 2), { headers: { authorization: t.sas.sas_key } })).status;

/** Polls until the SAS key is refused; returns how long that took. */
async function timeUntilRefused(suite: Suite, t: Awaited<ReturnType<typeof grantedAccess>>, startedAt: number): Promise<number> {
  for (;;) {
    const status = await publishStatus(suite, t);
    if (status === 401) return Date.now() - startedAt;
    expect(status).toBe(201);
    if (Date.now() - startedAt > REVOCATION_BUDGET_MS * 2) return Infinity;
    await sleep(100);
  }
}

describe('RFC 7009 revocation and RFC 7662 introspection at PAS', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL });
  });
  afterAll(() => suite?.close());

  const introspect = (token: string, caller?: string) => rawClient(suite, 'pas', caller).post('/oauth2/introspect', form({ token }), { headers: FORM });

  it('introspection tells PAC whether a refresh token is still current, and answers only authenticated callers', async () => {
    const { email, tenant, user } = await provisionTenant(suite);
    const first = await suite.pas.password(email, PASSWORD);
    const active = await introspect(first.refresh_token, 'pac');
    expect(active.status).toBe(200);
    expect(active.data).toMatchObject({ active: true, token_type: 'refresh_token', sub: user.id, tid: tenant, scope: 'feed:edr-events', iss: suite.urls.pas });
    expect((await introspect(first.access_token, 'pac')).data).toMatchObject({ active: true, token_type: 'access_token' });

    await suite.pas.refresh(first.refresh_token);
    expect((await introspect(first.refresh_token, 'pac')).data).toEqual({ active: false });
    expect((await introspect('garbage', 'pac')).data).toEqual({ active: false });
    const anonymous = await introspect(first.access_token);
    expect(anonymous.status).toBe(401);
    expect(anonymous.data.error).toBe('invalid_client');
  });

  it('revoking a refresh token ends its family: no refresh, no SAS key, access token inactive', async () => {
    const { email } = await provisionTenant(suite);
    const pair = await suite.pas.password(email, PASSWORD);
    const revoked = await rawClient(suite, 'pas').post('/oauth2/revoke', form({ token: pair.refresh_token, token_type_hint: 'refresh_token' }), { headers: FORM });
    expect(revoked.status).toBe(200);
    const again = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'refresh_token', refresh_token: pair.refresh_token }), { headers: FORM });
    expect(again.data.error).toBe('invalid_grant');
    expect((await rawClient(suite, 'pac').post('/v1/sas', { refresh_token: pair.refresh_token })).status).toBe(401);
    expect((await introspect(pair.access_token, 'pac')).data).toEqual({ active: false });
  });

  it('answers 200 for tokens it does not know (RFC 7009 §2.2)', async () => {
    const response = await rawClient(suite, 'pas').post('/oauth2/revoke', form({ token: 'not-a-token' }), { headers: FORM });
    expect(response.status).toBe(200);
    const missing = await rawClient(suite, 'pas').post('/oauth2/revoke', form({}), { headers: FORM });
    expect(missing.status).toBe(400);
    expect(missing.data.error).toBe('invalid_request');
  });
});

describe('strict revocation: entitlement removals stop access within 5 seconds', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
  });
  afterAll(() => suite?.close());

  it('removing a user revokes their SAS keys and refresh families', async () => {
    const t = await grantedAccess(suite);
    const started = Date.now();
    await rawClient(suite, 'entitlement', 'operator').delete(`/v1/tenants/${t.tenant}/users/${t.user.id}`);
    expect(await timeUntilRefused(suite, t, started)).toBeLessThan(REVOCATION_BUDGET_MS);
    const refreshed = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'refresh_token', refresh_token: t.tokens.refresh_token }), { headers: FORM });
    expect(refreshed.data.error).toBe('invalid_grant');
    expect((await rawClient(suite, 'pac').post('/v1/sas', { refresh_token: t.tokens.refresh_token })).status).toBe(401);
    const login = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'password', username: t.email, password: PASSWORD }), { headers: FORM });
    expect(login.data.error).toBe('invalid_grant');
  });

  it('removing the feed role revokes access', async () => {
    const t = await grantedAccess(suite);
    const started = Date.now();
    const changed = await rawClient(suite, 'entitlement', 'operator').put(`/v1/tenants/${t.tenant}/users/${t.user.id}/roles`, { roles: ['downloader'] });
    expect(changed.status).toBe(200);
    expect(await timeUntilRefused(suite, t, started)).toBeLessThan(REVOCATION_BUDGET_MS);
    const login = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'password', username: t.email, password: PASSWORD }), { headers: FORM });
    expect(login.status).toBe(403);
  });

  it('removing a feed revokes the keys for that feed and leaves the others working', async () => {
    const t = await grantedAccess(suite, { feeds: ['edr-events', 'dns-logs'] });
    const other = await suite.pac.sas({ refresh_token: t.tokens.refresh_token, resource: `${suite.urls.topic}/tenants/${t.tenant}/topics/dns-logs`, rights: 'send' });
    const started = Date.now();
    await rawClient(suite, 'entitlement', 'operator').delete(`/v1/tenants/${t.tenant}/feeds/${t.feed}`);
    expect(await timeUntilRefused(suite, t, started)).toBeLessThan(REVOCATION_BUDGET_MS);
    // The family carried both feeds, so it is revoked too; keys for the other feed stay valid.
    expect((await suite.topic.publish(other.sas_key, makeBatch(t.tenant, 'dns-logs', 1))).id).toBeTruthy();
  });
});

describe('lenient revocation (the seed’s behaviour): access lasts until the credentials expire', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, revocationMode: 'lenient' });
  });
  afterAll(() => suite?.close());

  it('keeps the SAS key and refresh token working after the user is removed, while new logins fail', async () => {
    const t = await grantedAccess(suite);
    await rawClient(suite, 'entitlement', 'operator').delete(`/v1/tenants/${t.tenant}/users/${t.user.id}`);
    await sleep(REVOCATION_BUDGET_MS + 500);
    expect(await publishStatus(suite, t)).toBe(201);
    const refreshed = await suite.pas.refresh(t.tokens.refresh_token);
    expect(refreshed.refresh_token).toBeTruthy();
    const login = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'password', username: t.email, password: PASSWORD }), { headers: FORM });
    expect(login.data.error).toBe('invalid_grant');
  });
});
