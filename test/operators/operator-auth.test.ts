import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttp, FORM, form } from '@keyway/clients';
import { VENDOR_TENANT } from '@keyway/contracts';
import { loadKeyRing } from '@keyway/pas';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { issueAccessToken, KeyRing } from '@keyway/tokens';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';
import { operatorSession, provisionOperator, timeUntil } from './operator.ts';

/** The admin APIs' cache of PAS's introspection answer, short here so a revoked session stops quickly. */
const CACHE_SEC = 1;

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, operatorTokenCacheSec: CACHE_SEC });
});
afterAll(() => suite?.close());

/** A raw client sending a bearer token, to see statuses and headers as a caller would. */
const bearer = (service: 'entitlement' | 'pas' | 'pac' | 'audit', token?: string) =>
  createHttp({ baseUrl: suite.urls[service], caPem: suite.pki.ca.certPem, accessToken: token === undefined ? undefined : () => token });

/** One read of each admin API: entitlement, PAS signing keys, PAC SAS-key rotation (a made-up tenant: 404 once past authentication), the audit query. */
const adminCalls = (token?: string) => ({
  entitlement: () => bearer('entitlement', token).get('/v1/tenants'),
  pas: () => bearer('pas', token).get('/admin/v1/signing-keys'),
  pac: () => bearer('pac', token).post('/admin/v1/tenants/no-such-tenant/sas-keys/rotate', { key: 'primary' }),
  audit: () => bearer('audit', token).get('/v1/audit/events', { params: { limit: 1 } }),
});
const OK = { entitlement: 200, pas: 200, pac: 404, audit: 200 };

describe('operator login (PAS grant_type=password, scope=operator)', () => {
  it('issues an operator pair: roles with operator, scope "operator", aud naming PAC and the admin APIs (RFC 8707)', async () => {
    const { email, user } = await provisionOperator(suite);
    const { tokens } = await operatorSession(suite, email);
    expect(tokens.scope).toBe('operator');
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({ sub: user.id, tid: VENDOR_TENANT, roles: ['operator'], scope: 'operator', iss: suite.urls.pas });
    // PAC, then PAS's ADMIN_AUDIENCES: the admin APIs (the releases service's is its download report)
    const audiences = [suite.urls.pac, suite.urls.entitlement, suite.urls.pas, suite.urls.audit, suite.urls.releases];
    expect(claims.aud).toEqual(audiences);
    // A refresh keeps the operator scope (and re-checks the operator role in strict mode).
    const refreshed = await suite.pas.refresh(tokens.refresh_token);
    expect(refreshed.scope).toBe('operator');
    expect(decodeJwt(refreshed.access_token).aud).toEqual(audiences);
    // An operator token is no feed token: PAC mints no SAS key with it.
    const sas = await rawClient(suite, 'pac').post('/v1/sas', { refresh_token: refreshed.refresh_token });
    expect(sas.status).toBe(403);
  });

  it('refuses operator scope to users without the operator role, mixed scopes, and widening a feed refresh to operator', async () => {
    const t = await provisionTenant(suite);
    const token = (fields: Record<string, string>) => rawClient(suite, 'pas').post('/oauth2/token', form(fields), { headers: FORM });
    const denied = await token({ grant_type: 'password', username: t.email, password: PASSWORD, scope: 'operator' });
    expect(denied.status).toBe(403);
    expect(denied.data).toMatchObject({ error: 'access_denied', error_description: expect.stringContaining('role_missing') });
    const mixed = await token({ grant_type: 'password', username: t.email, password: PASSWORD, scope: 'operator feed:edr-events' });
    expect(mixed.data.error).toBe('invalid_scope');
    const feedPair = await suite.pas.password(t.email, PASSWORD);
    const widened = await token({ grant_type: 'refresh_token', refresh_token: feedPair.refresh_token, scope: 'operator' });
    expect(widened.data.error).toBe('invalid_scope');
    // Feed logins are unchanged: PAC's audience only, feed scope.
    expect(decodeJwt(feedPair.access_token).aud).toBe(suite.urls.pac);
    expect(feedPair.scope).toBe('feed:edr-events');
  });

  it('keeps the operator role to the vendor tenant: refused on a customer tenant’s user (400)', async () => {
    const t = await provisionTenant(suite);
    const created = await rawClient(suite, 'entitlement', 'operator').post(`/v1/tenants/${t.tenant}/users`, { email: `op@${t.tenant}.example`, password: PASSWORD, roles: ['operator'] });
    expect(created.status).toBe(400);
    const promoted = await rawClient(suite, 'entitlement', 'operator').put(`/v1/tenants/${t.tenant}/users/${t.user.id}/roles`, { roles: ['full-control', 'operator'] });
    expect(promoted.status).toBe(400);
  });
});

describe('the admin APIs accept the operator certificate or an operator bearer token', () => {
  it('accept an operator access token at the entitlement service, PAS, PAC and the audit service', async () => {
    const { email } = await provisionOperator(suite);
    const session = await operatorSession(suite, email);
    for (const [service, call] of Object.entries(adminCalls(session.tokens.access_token))) {
      const response = await call();
      expect({ service, status: response.status }).toEqual({ service, status: OK[service as keyof typeof OK] });
    }
    // The typed clients carry it too.
    expect((await session.entitlement.listRoles()).roles.map((r) => r.name)).toEqual(['full-control', 'read-only', 'producer', 'downloader', 'uploader', 'publisher', 'operator']);
    expect((await session.pas.signingKeys()).keys.length).toBeGreaterThan(0);
    // And the operator certificate still works, as the launcher and the other tests use it.
    expect((await rawClient(suite, 'entitlement', 'operator').get('/v1/tenants')).status).toBe(200);
  });

  it('answer 401 with a bare Bearer challenge without credentials (RFC 6750 §3)', async () => {
    for (const [service, call] of Object.entries(adminCalls())) {
      const response = await call();
      expect({ service, status: response.status }).toEqual({ service, status: 401 });
      expect(response.headers['www-authenticate']).toBe('Bearer realm="keyway"');
      expect(response.data).toEqual({ error: 'invalid_client', error_description: expect.any(String) });
    }
  });

  it('answer 403 insufficient_scope for a feed user’s token at PAC, and 401 where the token is not for the service (its "aud")', async () => {
    const t = await provisionTenant(suite);
    const feedToken = (await suite.pas.password(t.email, PASSWORD)).access_token;
    const calls = adminCalls(feedToken);
    const pac = await calls.pac();
    expect(pac.status).toBe(403);
    expect(pac.data.error).toBe('insufficient_scope');
    expect(pac.headers['www-authenticate']).toBe('Bearer realm="keyway", error="insufficient_scope", scope="operator"');
    for (const response of [await calls.entitlement(), await calls.pas(), await calls.audit()]) {
      expect(response.status).toBe(401);
      expect(response.data.error).toBe('invalid_token');
      expect(response.headers['www-authenticate']).toContain('error="invalid_token"');
    }
    // An operator's own feed-less login without scope=operator is no operator token either.
    const { email, user } = await provisionOperator(suite);
    await suite.operator.updateUser(VENDOR_TENANT, user.id, { roles: ['operator', 'full-control'] });
    await suite.operator.grantFeed(VENDOR_TENANT, 'audit-events');
    const operatorFeedToken = (await suite.pas.password(email, PASSWORD)).access_token;
    expect(decodeJwt(operatorFeedToken).roles).toContain('operator');
    const scoped = await adminCalls(operatorFeedToken).pac();
    expect(scoped.status).toBe(403);
    await suite.operator.removeFeed(VENDOR_TENANT, 'audit-events');
  });

  it('answer 401 invalid_token for an expired, a forged and a malformed token', async () => {
    const { user } = await provisionOperator(suite);
    const claims = { sub: user.id, tid: VENDOR_TENANT, roles: ['operator'], scope: 'operator', client_id: 'keyway-importer', fid: randomUUID() };
    const audience = [suite.urls.pac, suite.urls.entitlement, suite.urls.pas, suite.urls.audit];
    const settings = { issuer: suite.urls.pas, accessAudience: suite.urls.pac, refreshAudience: suite.urls.pas, accessTtlSec: 60, refreshTtlSec: 60, clockToleranceSec: 0 };
    // Signed by PAS's own key, but an hour old: expired beyond any clock tolerance.
    const expired = (await issueAccessToken((await loadKeyRing(suite.records.pas, suite.kek)).signer(), { ...settings, now: () => Date.now() - 3600_000 }, claims, audience)).token;
    const forged = (await issueAccessToken((await KeyRing.generate()).signer(), settings, claims, audience)).token;
    for (const token of [expired, forged, 'not.a.jwt']) {
      for (const [service, call] of Object.entries(adminCalls(token))) {
        const response = await call();
        expect({ service, status: response.status, error: response.data.error }).toEqual({ service, status: 401, error: 'invalid_token' });
        expect(response.headers['www-authenticate']).toBe('Bearer realm="keyway", error="invalid_token"');
      }
    }
    const notBearer = await createHttp({ baseUrl: suite.urls.entitlement, caPem: suite.pki.ca.certPem }).get('/v1/tenants', { headers: { authorization: 'Basic b3A6b3A=' } });
    expect(notBearer.status).toBe(401);
    expect(notBearer.data.error).toBe('invalid_token');
  });

  it('stop accepting a revoked operator session (RFC 7009) within the introspection cache time', async () => {
    const { email } = await provisionOperator(suite);
    const { tokens } = await operatorSession(suite, email);
    const calls = adminCalls(tokens.access_token);
    for (const call of Object.values(calls)) expect((await call()).status).not.toBe(401);
    await suite.pas.revoke(tokens.refresh_token, 'refresh_token');
    const budgetMs = (CACHE_SEC + 1) * 1000;
    for (const [service, call] of Object.entries(calls)) {
      const took = await timeUntil(async () => (await call()).status, 401, budgetMs * 2);
      expect({ service, withinBudget: took <= budgetMs }).toEqual({ service, withinBudget: true });
    }
    // The refresh token is gone too: the operator logs in again.
    expect((await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }), { headers: FORM })).data.error).toBe('invalid_grant');
  });

  it('stop accepting an operator whose role was removed (role.removed revokes the session)', async () => {
    const { email, user } = await provisionOperator(suite);
    const { tokens } = await operatorSession(suite, email);
    await suite.operator.setRoles(VENDOR_TENANT, user.id, ['read-only']);
    const took = await timeUntil(async () => (await adminCalls(tokens.access_token).entitlement()).status, 401, 10_000);
    expect(took).toBeLessThan(5000 + CACHE_SEC * 1000);
    const again = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'password', username: email, password: PASSWORD, scope: 'operator' }), { headers: FORM });
    expect(again.status).toBe(403);
  });
});
