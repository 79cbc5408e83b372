import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, FORM, form, type EntitlementClient } from '@keyway/clients';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, rawClient } from '../helpers.ts';
import { operatorSession, provisionOperator, timeUntil } from './operator.ts';

/** design.md: strict mode revokes within seconds. */
const REVOCATION_BUDGET_MS = 5000;

let suite: Suite;
let admin: EntitlementClient;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
  const { email } = await provisionOperator(suite);
  admin = (await operatorSession(suite, email)).entitlement;
});
afterAll(() => suite?.close());

const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;
const status = (promise: Promise<unknown>) =>
  promise.then(
    () => 200,
    (err: unknown) => (err instanceof ApiError ? err.status : Promise.reject(err)),
  );
const login = (username: string, password = PASSWORD) => rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'password', username, password }), { headers: FORM });

/** A user of the tenant holding a SAS key (listen-send) for the feed; the probe publishes with it. */
async function holder(tenant: string, email: string, feed: string) {
  const tokens = await suite.pas.password(email, PASSWORD, `feed:${feed}`);
  const sas = await suite.pac.sas({ refresh_token: tokens.refresh_token, resource: `${suite.urls.topic}/tenants/${tenant}/topics/${feed}`, rights: 'listen-send' });
  const publish = async () => (await rawClient(suite, 'topic').post(`/tenants/${tenant}/topics/${feed}/messages`, makeBatch(tenant, feed, 1), { headers: { authorization: sas.sas_key } })).status;
  expect(await publish()).toBe(201);
  return { tokens, publish };
}

describe('a tenant’s life through the admin API (operator bearer token)', () => {
  it('create on a tier, add a user, grant a feed, list subscriptions, change tier, suspend, resume, delete', async () => {
    const basic = unique('basic');
    const plus = unique('plus');
    expect((await admin.putTier(basic, { name: 'Basic', feeds: ['edr-events'] })).created).toBe(true);
    expect(await admin.putTier(plus, { name: 'Plus', feeds: ['edr-events', 'dns-logs'] })).toMatchObject({ created: true, feeds: ['edr-events', 'dns-logs'] });
    expect((await admin.listTiers()).tiers.map((t) => t.id)).toEqual(expect.arrayContaining([basic, plus]));

    // Made with the certificate client, which records the tenant so the suite deletes its queues.
    const tenant = unique('life');
    const created = await suite.operator.createTenant({ id: tenant, name: 'Life Corp', tier: plus });
    expect(created).toMatchObject({ id: tenant, status: 'active', tier: plus, feeds: ['edr-events', 'dns-logs'] });
    expect(await admin.updateTenant(tenant, { name: 'Life Corporation' })).toMatchObject({ name: 'Life Corporation' });

    const email = `agent@${tenant}.example`;
    const user = await admin.createUser(tenant, { email, password: PASSWORD, roles: ['full-control'] });
    expect(await admin.getUser(tenant, user.id)).toEqual(user);
    expect((await admin.listUsers(tenant)).users).toEqual([user]);

    expect((await admin.grantFeed(tenant, 'extra-feed')).feeds).toEqual(['edr-events', 'dns-logs', 'extra-feed']);
    expect(await admin.createSubscription(tenant, 'edr-events', 'siem')).toMatchObject({ name: 'siem', feed: 'edr-events', created: true });
    expect((await admin.createSubscription(tenant, 'edr-events', 'siem')).created).toBe(false);
    await admin.createSubscription(tenant, 'dns-logs', 'archive');
    expect((await admin.listSubscriptions(tenant, 'edr-events')).subscriptions.map((s) => s.name)).toEqual(['siem']);
    expect(await admin.listFeeds(tenant)).toEqual({
      tenant,
      feeds: [
        { name: 'edr-events', subscriptions: ['siem'] },
        { name: 'dns-logs', subscriptions: ['archive'] },
        { name: 'extra-feed', subscriptions: [] },
      ],
    });
    expect(await status(admin.createSubscription(tenant, 'not-granted', 'x'))).toBe(404);

    const edr = await holder(tenant, email, 'edr-events');
    const dns = await holder(tenant, email, 'dns-logs');

    // Back to the basic tier: dns-logs and the hand-granted feed go, and their SAS keys stop within seconds.
    const onBasic = await admin.setTenantTier(tenant, basic);
    expect(onBasic).toMatchObject({ tier: basic, feeds: ['edr-events'] });
    expect(await timeUntil(dns.publish, 401, REVOCATION_BUDGET_MS * 2)).toBeLessThan(REVOCATION_BUDGET_MS);
    expect((await admin.listFeeds(tenant)).feeds).toEqual([{ name: 'edr-events', subscriptions: ['siem'] }]);

    // An active tenant is not deleted: suspending first is the deliberate step.
    expect(await status(admin.deleteTenant(tenant))).toBe(409);

    const fresh = await holder(tenant, email, 'edr-events');
    expect(await admin.suspendTenant(tenant)).toMatchObject({ status: 'suspended', suspendedBy: 'operator' });
    expect(await timeUntil(fresh.publish, 401, REVOCATION_BUDGET_MS * 2)).toBeLessThan(REVOCATION_BUDGET_MS);
    expect(await edr.publish()).toBe(401);
    const suspendedLogin = await login(email);
    expect(suspendedLogin.status).toBe(403);
    expect(suspendedLogin.data.error_description).toContain('tenant_suspended');
    expect((await admin.suspendTenant(tenant)).status).toBe('suspended');

    const resumed = await admin.resumeTenant(tenant);
    expect(resumed.status).toBe('active');
    expect(resumed.suspendedBy).toBeUndefined();
    expect((await login(email)).status).toBe(200);

    await admin.suspendTenant(tenant);
    await admin.deleteTenant(tenant);
    expect(await status(admin.getTenant(tenant))).toBe(404);
    expect(await status(admin.getUser(tenant, user.id))).toBe(404);
    // The user's credentials are gone from the IdP: the same answer as a wrong password.
    const gone = await login(email);
    expect(gone.status).toBe(400);
    expect(gone.data.error).toBe('invalid_grant');
    expect(await status(admin.deleteTenant(tenant))).toBe(404);
  });

  it('lists tenants a page at a time, in id order, with a cursor', async () => {
    const prefix = `page-${randomUUID().slice(0, 6)}`;
    const ids = [`${prefix}-a`, `${prefix}-b`, `${prefix}-c`];
    for (const id of ids) await admin.createTenant({ id, name: id, feeds: [] });
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await admin.listTenants({ limit: 2, cursor });
      expect(page.tenants.length).toBeLessThanOrEqual(2);
      seen.push(...page.tenants.map((t) => t.id));
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor !== undefined && pages < 1000);
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((id) => id.startsWith(prefix))).toEqual(ids);
    const bad = await rawClient(suite, 'entitlement', 'operator').get('/v1/tenants', { params: { limit: 0 } });
    expect(bad.status).toBe(400);
  });

  it('changing a tier changes the feeds of every tenant on it, removals announced', async () => {
    const tier = unique('gold');
    await admin.putTier(tier, { name: 'Gold', feeds: ['edr-events', 'dns-logs'] });
    const a = await admin.createTenant({ id: unique('gold-a'), name: 'A', tier });
    const b = await admin.createTenant({ id: unique('gold-b'), name: 'B', feeds: ['edr-events'] });
    await admin.setTenantTier(b.id, tier);
    const replaced = await admin.putTier(tier, { name: 'Gold', feeds: ['edr-events', 'proxy-logs'] });
    expect(replaced.created).toBe(false);
    for (const id of [a.id, b.id]) expect((await admin.getTenant(id)).feeds).toEqual(['edr-events', 'proxy-logs']);
    expect(await status(admin.setTenantTier(a.id, 'no-such-tier'))).toBe(404);
    expect(await status(admin.createTenant({ id: unique('both'), name: 'x', tier, feeds: ['edr-events'] }))).toBe(400);
  });

  it('lists the fixed roles with descriptions', async () => {
    const { roles } = await admin.listRoles();
    expect(roles.map((r) => r.name)).toEqual(['full-control', 'read-only', 'producer', 'downloader', 'uploader', 'publisher', 'operator']);
    for (const role of roles) expect(role.description.length).toBeGreaterThan(10);
  });
});

describe('users: email change, password set / reset', () => {
  it('resetting a password ends the user’s sessions and SAS keys (credentials.changed); the new one logs in', async () => {
    const tenant = unique('pw');
    await suite.operator.createTenant({ id: tenant, name: 'Password Corp', feeds: ['edr-events'] });
    const email = `agent@${tenant}.example`;
    const user = await admin.createUser(tenant, { email, password: PASSWORD, roles: ['full-control'] });
    const session = await holder(tenant, email, 'edr-events');

    const next = 'another horse battery staple';
    await admin.setPassword(tenant, user.id, next);
    expect(await timeUntil(session.publish, 401, REVOCATION_BUDGET_MS * 2)).toBeLessThan(REVOCATION_BUDGET_MS);
    const refreshed = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'refresh_token', refresh_token: session.tokens.refresh_token }), { headers: FORM });
    expect(refreshed.data.error).toBe('invalid_grant');
    expect((await login(email)).data.error).toBe('invalid_grant');
    expect((await login(email, next)).status).toBe(200);
    expect(await status(admin.setPassword(tenant, user.id, 'short'))).toBe(400);
  });

  it('a user created without a password cannot log in until one is set', async () => {
    const tenant = unique('nopw');
    await admin.createTenant({ id: tenant, name: 'No Password', feeds: ['edr-events'] });
    const email = `agent@${tenant}.example`;
    const user = await admin.createUser(tenant, { email, roles: ['full-control'] });
    expect((await login(email)).data.error).toBe('invalid_grant');
    await admin.setPassword(tenant, user.id, PASSWORD);
    expect((await login(email)).status).toBe(200);
  });

  it('changing the email changes the login name; another user’s email is refused (409)', async () => {
    const tenant = unique('mail');
    await admin.createTenant({ id: tenant, name: 'Mail', feeds: ['edr-events'] });
    const user = await admin.createUser(tenant, { email: `old@${tenant}.example`, password: PASSWORD, roles: ['full-control'] });
    const other = await admin.createUser(tenant, { email: `other@${tenant}.example`, password: PASSWORD, roles: ['read-only'] });
    const updated = await admin.updateUser(tenant, user.id, { email: `New@${tenant}.example` });
    expect(updated.email).toBe(`new@${tenant}.example`);
    expect((await login(`new@${tenant}.example`)).status).toBe(200);
    expect((await login(`old@${tenant}.example`)).data.error).toBe('invalid_grant');
    expect(await status(admin.updateUser(tenant, user.id, { email: other.email }))).toBe(409);
    expect((await admin.getUser(tenant, user.id)).email).toBe(`new@${tenant}.example`);
    // The old address is free again.
    expect((await admin.createUser(tenant, { email: `old@${tenant}.example`, roles: ['read-only'] })).email).toBe(`old@${tenant}.example`);
    expect(await status(admin.updateUser(tenant, user.id, {}))).toBe(400);
  });
});
