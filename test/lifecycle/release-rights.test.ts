import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { type ChangeEvent, mayOnRelease, type ReleaseRights } from '@keyway/contracts';
import { createLogger, followChangeEvents } from '@keyway/kit';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionReleaseTenant, provisionTenant, RELEASE_PRODUCT, rawClient } from '../helpers.ts';

// Issue 13, release rights through the chain: the entitlement service answers them from the role
// table, the tenant's tier (products and version ranges) and the user's own products; PAS writes them
// into scope=releases tokens for the releases service, and narrows them at each refresh (strict mode).

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, revocationMode: 'strict' });
});
afterAll(() => suite?.close());

const claims = (token: string) => decodeJwt(token) as { aud: string | string[]; roles: string[]; scope: string; releases?: ReleaseRights; rights?: unknown };
const token = (fields: Record<string, string>) => rawClient(suite, 'pas').post('/oauth2/token', form(fields), { headers: FORM });
const login = (email: string, scope = 'releases') => token({ grant_type: 'password', username: email, password: PASSWORD, scope });
const refresh = (refreshToken: string, scope?: string) => token({ grant_type: 'refresh_token', refresh_token: refreshToken, ...(scope && { scope }) });
const actionsOf = async (tenant: string) => (await suite.auditor.events({ tenant, order: 'oldest', limit: 100 })).events.map((e) => `${e.action}:${e.outcome}`);

describe('scope=releases at the token endpoint', () => {
  it('gives a downloader the tier’s products and ranges in a releases claim, for the releases service only', async () => {
    const { email, tenant } = await provisionReleaseTenant(suite);
    const answer = await login(email);
    expect(answer.status).toBe(200);
    expect(answer.data.scope).toBe('releases');
    const expected: ReleaseRights = { 'edr-agent': { rights: ['download'], versions: '>=1.0.0' } };
    const access = claims(answer.data.access_token);
    expect(access).toMatchObject({ aud: suite.urls.releases, scope: 'releases', roles: ['downloader'], releases: expected });
    expect(access.rights).toBeUndefined();
    expect(claims(answer.data.refresh_token).releases).toEqual(expected);
    expect(mayOnRelease(expected, 'edr-agent', 'download', '1.4.0')).toBe(true);
    expect(mayOnRelease(expected, 'edr-agent', 'download', '0.9.0')).toBe(false);

    // RFC 7662: introspection (PAC's certificate, a resource server) answers the claim for both tokens
    for (const [t, hint] of [
      [answer.data.access_token, 'access_token'],
      [answer.data.refresh_token, 'refresh_token'],
    ] as const) {
      const introspected = await rawClient(suite, 'pas', 'pac').post('/oauth2/introspect', form({ token: t, token_type_hint: hint }), { headers: FORM });
      expect(introspected.data).toMatchObject({ active: true, scope: 'releases', tid: tenant, releases: expected });
    }
    // a releases pair is for the releases service: PAC does not trade its refresh token for a feed key
    const sas = await rawClient(suite, 'pac').post('/v1/sas', { refresh_token: answer.data.refresh_token });
    expect({ status: sas.status, error: sas.data.error }).toEqual({ status: 403, error: 'insufficient_scope' });
    expect(await actionsOf(tenant)).toContain('token.issued:success');
  });

  it('gives an uploader upload on its own products only, and a publisher upload, publish and withdraw (and download) on its own', async () => {
    const uploader = await provisionReleaseTenant(suite, { roles: ['uploader'], products: ['sensor'] });
    const uploaded = claims((await login(uploader.email)).data.access_token).releases!;
    expect(uploaded).toEqual({ sensor: { rights: ['upload'], versions: '*' } });
    expect(mayOnRelease(uploaded, 'sensor', 'upload')).toBe(true);
    expect(mayOnRelease(uploaded, 'edr-agent', 'upload')).toBe(false);
    expect(mayOnRelease(uploaded, 'sensor', 'download', '1.0.0')).toBe(false);

    const publisher = await provisionReleaseTenant(suite, { roles: ['publisher'], products: ['sensor'] });
    const published = claims((await login(publisher.email)).data.access_token).releases!;
    expect(published).toEqual({ sensor: { rights: ['download', 'upload', 'publish', 'withdraw'], versions: '*' } });
    expect(mayOnRelease(published, 'sensor', 'publish', '2.0.0')).toBe(true);
    expect(mayOnRelease(published, 'edr-agent', 'publish', '2.0.0')).toBe(false);

    // both at once: a downloader of the tier's product who uploads to another
    const both = await provisionReleaseTenant(suite, { roles: ['downloader', 'uploader'], products: ['sensor'] });
    expect(claims((await login(both.email)).data.access_token).releases).toEqual({
      'edr-agent': { rights: ['download'], versions: '>=1.0.0' },
      sensor: { rights: ['upload'], versions: '*' },
    });
  });

  it('refuses a feed-only role (role_missing) and a release role with no product (product_not_entitled): 403 access_denied, recorded', async () => {
    const feedOnly = await provisionTenant(suite);
    const refused = await login(feedOnly.email);
    expect({ status: refused.status, data: refused.data }).toEqual({
      status: 403,
      data: { error: 'access_denied', error_description: 'the user holds no role that grants this login (role_missing)' },
    });
    expect(await actionsOf(feedOnly.tenant)).toContain('authorization.denied:denied');

    const noProduct = await provisionReleaseTenant(suite, { roles: ['uploader'] });
    const none = await login(noProduct.email);
    expect({ status: none.status, error: none.data.error }).toEqual({ status: 403, error: 'access_denied' });
    expect(none.data.error_description).toContain('(product_not_entitled)');
    const emptyTier = await provisionReleaseTenant(suite, { tierProducts: [] });
    expect((await login(emptyTier.email)).data.error_description).toContain('(product_not_entitled)');
  });

  it('never mixes releases with feeds or operator in one token, nor trades one for the other at a refresh (invalid_scope)', async () => {
    const { email } = await provisionReleaseTenant(suite, { roles: ['downloader', 'full-control'] });
    for (const scope of ['releases feed:edr-events', 'releases operator']) {
      const mixed = await login(email, scope);
      expect({ scope, status: mixed.status, error: mixed.data.error }).toEqual({ scope, status: 400, error: 'invalid_scope' });
    }
    const releases = await login(email);
    expect((await refresh(releases.data.refresh_token, 'feed:edr-events')).data.error).toBe('invalid_scope');
    const afterRefusal = await refresh(releases.data.refresh_token, 'releases');
    expect(afterRefusal.status).toBe(200);
    expect(afterRefusal.data.scope).toBe('releases');
  });
});

describe('strict refresh re-checks release rights', () => {
  it('narrows to what the tier still gives when it drops a product, and ends the family when it gives none', async () => {
    const { email, tenant, tier } = await provisionReleaseTenant(suite, { tierProducts: [RELEASE_PRODUCT, { product: 'dns-probe', versions: '^2.0.0' }] });
    const first = await login(email);
    expect(Object.keys(claims(first.data.access_token).releases!).sort()).toEqual(['dns-probe', 'edr-agent']);

    await suite.operator.putTier(tier, { name: 'Narrower', feeds: [], products: [{ product: 'dns-probe', versions: '^2.0.0' }] });
    const narrowed = await refresh(first.data.refresh_token);
    expect(narrowed.status).toBe(200);
    expect(claims(narrowed.data.access_token).releases).toEqual({ 'dns-probe': { rights: ['download'], versions: '^2.0.0' } });
    expect(claims(narrowed.data.refresh_token).releases).toEqual({ 'dns-probe': { rights: ['download'], versions: '^2.0.0' } });

    // a product the tier gives again is not given back by a refresh (RFC 6749 §6: never wider); a login gives it
    await suite.operator.putTier(tier, { name: 'Wider again', feeds: [], products: [RELEASE_PRODUCT, { product: 'dns-probe', versions: '>=2.1.0' }] });
    const again = await refresh(narrowed.data.refresh_token);
    expect(claims(again.data.access_token).releases).toEqual({ 'dns-probe': { rights: ['download'], versions: '^2.0.0 >=2.1.0' } });
    expect(Object.keys(claims((await login(email)).data.access_token).releases!).sort()).toEqual(['dns-probe', 'edr-agent']);

    await suite.operator.putTier(tier, { name: 'Only the other', feeds: [], products: [RELEASE_PRODUCT] });
    const ended = await refresh(again.data.refresh_token);
    expect({ status: ended.status, error: ended.data.error }).toEqual({ status: 400, error: 'invalid_grant' });
    expect(await actionsOf(tenant)).toEqual(expect.arrayContaining(['refresh_family.revoked:success', 'authorization.denied:denied']));
    const trail = (await suite.auditor.events({ tenant, action: 'refresh_family.revoked' })).events;
    expect(trail.map((e) => e.reason)).toContain('product_not_entitled');
  });

  it('narrows an uploader’s rights when its products change, and the tenant’s when it moves to another tier', async () => {
    const { email, tenant, user } = await provisionReleaseTenant(suite, { roles: ['downloader', 'uploader'], products: ['sensor', 'probe'] });
    const first = await login(email);
    expect(Object.keys(claims(first.data.access_token).releases!).sort()).toEqual(['edr-agent', 'probe', 'sensor']);
    await suite.operator.updateUser(tenant, user.id, { products: ['probe'] });
    // products.changed ends no family: the refresh answers what remains
    const fewer = await refresh(first.data.refresh_token);
    expect(Object.keys(claims(fewer.data.access_token).releases!).sort()).toEqual(['edr-agent', 'probe']);

    const other = `tier-other-${tenant}`;
    await suite.operator.putTier(other, { name: 'Other', feeds: [], products: [{ product: 'dns-probe' }] });
    await suite.operator.setTenantTier(tenant, other);
    const moved = await refresh(fewer.data.refresh_token);
    expect(claims(moved.data.access_token).releases).toEqual({ probe: { rights: ['upload'], versions: '*' } });
  });

  it('ends the family when a release role is removed (role.removed), as for feeds', async () => {
    const { email, tenant, user } = await provisionReleaseTenant(suite, { roles: ['downloader', 'uploader'], products: ['sensor'] });
    const first = await login(email);
    await suite.operator.updateUser(tenant, user.id, { roles: ['uploader'] });
    // PAS follows the change event: the family ends within seconds
    const introspect = async () => (await rawClient(suite, 'pas', 'pac').post('/oauth2/introspect', form({ token: first.data.refresh_token }), { headers: FORM })).data.active;
    await expect.poll(introspect, { timeout: 10_000 }).toBe(false);
    const refused = await refresh(first.data.refresh_token);
    expect({ status: refused.status, error: refused.data.error }).toEqual({ status: 400, error: 'invalid_grant' });
    expect(claims((await login(email)).data.access_token).releases).toEqual({ sensor: { rights: ['upload'], versions: '*' } });
  });
});

describe('change events (the transactional outbox)', () => {
  it('announces narrowed release rights as products.changed: a tier’s products, a tenant’s move, a user’s products', async () => {
    // a subscription of the test's own, declared before the changes, beside PAS's and PAC's
    await suite.broker.declareSubscription(suite.changeEventsTopic, 'release-rights-test');
    const seen: ChangeEvent[] = [];
    const follower = followChangeEvents(suite.broker, 'release-rights-test', createLogger({ service: 'test', level: 'error' }), async (event) => void seen.push(event), suite.changeEventsTopic);
    try {
      const { tenant, tier, user } = await provisionReleaseTenant(suite, {
        roles: ['downloader', 'uploader'],
        tierProducts: [RELEASE_PRODUCT, { product: 'dns-probe' }],
        products: ['sensor', 'probe'],
      });
      // wider changes announce nothing: a product added, a user's product added
      await suite.operator.putTier(tier, { name: 'Wider', feeds: [], products: [RELEASE_PRODUCT, { product: 'dns-probe' }, { product: 'extra' }] });
      await suite.operator.updateUser(tenant, user.id, { products: ['sensor', 'probe', 'more'] });
      // narrower ones: dns-probe dropped and edr-agent's range changed; the user's probe and more dropped; the tenant moved
      await suite.operator.putTier(tier, { name: 'Narrower', feeds: [], products: [{ product: 'edr-agent', versions: '^1.0.0' }, { product: 'extra' }] });
      await suite.operator.updateUser(tenant, user.id, { products: ['sensor'] });
      const other = `tier-moved-${tenant}`;
      await suite.operator.putTier(other, { name: 'Other', feeds: [], products: [{ product: 'extra' }] });
      await suite.operator.setTenantTier(tenant, other);
      const changes = () => seen.filter((e) => e.type === 'products.changed' && e.tenant === tenant).map((e) => (e.type === 'products.changed' ? { sub: e.sub, products: e.products } : undefined));
      await expect.poll(changes, { timeout: 10_000 }).toHaveLength(3);
      expect(changes()).toEqual([
        { sub: undefined, products: ['edr-agent', 'dns-probe'] },
        { sub: user.id, products: ['probe', 'more'] },
        { sub: undefined, products: ['edr-agent'] },
      ]);
    } finally {
      await follower.stop();
    }
  });
});

describe('POST /v1/authorize from the releases service’s certificate (least privilege)', () => {
  it('answers access releases, and refuses access feeds and operator with 403 access_denied', async () => {
    const { tenant, user } = await provisionReleaseTenant(suite);
    const releases = rawClient(suite, 'entitlement', 'releases');
    const allowed = await releases.post('/v1/authorize', { sub: user.id, tenant, access: 'releases' });
    expect(allowed.status).toBe(200);
    expect(allowed.data).toEqual({ allow: true, feeds: [], rights: {}, roles: ['downloader'], releases: { 'edr-agent': { rights: ['download'], versions: '>=1.0.0' } } });
    const denied = await releases.post('/v1/authorize', { sub: 'nobody', tenant, access: 'releases' });
    expect(denied.data).toEqual({ allow: false, reason: 'user_unknown' });

    for (const body of [
      { sub: user.id, tenant, access: 'feeds' },
      { sub: user.id, tenant },
      { sub: user.id, tenant, access: 'operator' },
    ]) {
      const refused = await releases.post('/v1/authorize', body);
      expect({ body, status: refused.status, error: refused.data.error }).toEqual({ body, status: 403, error: 'access_denied' });
    }
    // PAS still asks anything
    expect((await rawClient(suite, 'entitlement', 'pas').post('/v1/authorize', { sub: user.id, tenant, access: 'feeds' })).data).toEqual({ allow: false, reason: 'role_missing' });
  });
});

describe('tiers and users through the admin API', () => {
  it('keeps products and ranges, refuses a bad range or version range and repeated products with 400', async () => {
    const tier = `tier-admin-${Date.now().toString(36)}`;
    const put = await suite.operator.putTier(tier, { name: 'Products', feeds: [], products: [{ product: 'edr-agent', versions: '^1.2.0' }, { product: 'sensor' }] });
    expect(put.products).toEqual([
      { product: 'edr-agent', versions: '^1.2.0' },
      { product: 'sensor', versions: '*' },
    ]);
    const admin = rawClient(suite, 'entitlement', 'operator');
    for (const products of [[{ product: 'edr-agent', versions: 'latest' }], [{ product: 'Edr Agent' }], [{ product: 'a' }, { product: 'a' }]]) {
      const refused = await admin.put(`/v1/tiers/${tier}`, { name: 'Bad', feeds: [], products });
      expect({ products, status: refused.status, error: refused.data.error }).toEqual({ products, status: 400, error: 'invalid_request' });
    }
    const { tenant, user } = await provisionReleaseTenant(suite, { roles: ['uploader'], products: ['sensor'] });
    expect((await suite.operator.getUser(tenant, user.id)).products).toEqual(['sensor']);
    const refused = await admin.patch(`/v1/tenants/${tenant}/users/${user.id}`, { products: ['sensor', 'sensor'] });
    expect({ status: refused.status, error: refused.data.error }).toEqual({ status: 400, error: 'invalid_request' });
    expect((await suite.operator.updateUser(tenant, user.id, { products: [] })).products).toEqual([]);
    expect(await actionsOf(tenant)).toContain('admin.user_products_changed:success');
  });
});
