import { describe, expect, it } from 'vitest';
import type { Tenant, User } from '@keyway/contracts';
import { evaluate } from './evaluate.ts';

const tenant = (id: string, feeds: string[] = ['edr-events'], status: Tenant['status'] = 'active'): Tenant => ({ id, name: id, status, feeds, createdAt: '' });
const user = (tenantId: string, roles: User['roles'], products: string[] = []): User => ({ id: 'u1', tenant: tenantId, email: 'a@b.example', roles, products, createdAt: '' });
const operatorTenant = 'vendor';

describe('evaluate', () => {
  it('grants the tenant’s feeds to a full-control user, and denies by default with a reason', () => {
    expect(evaluate({ tenant: tenant('acme'), user: user('acme', ['full-control']), access: 'feeds', feeds: [], operatorTenant })).toEqual({
      allow: true,
      feeds: ['edr-events'],
      rights: { 'edr-events': 'listen-send' },
      roles: ['full-control'],
    });
    expect(evaluate({ tenant: undefined, user: undefined, access: 'feeds', feeds: [], operatorTenant })).toEqual({ allow: false, reason: 'tenant_unknown' });
    expect(evaluate({ tenant: tenant('acme', [], 'suspended'), user: user('acme', ['full-control']), access: 'feeds', feeds: [], operatorTenant })).toEqual({
      allow: false,
      reason: 'tenant_suspended',
    });
    expect(evaluate({ tenant: tenant('acme', []), user: user('acme', ['full-control']), access: 'feeds', feeds: [], operatorTenant })).toEqual({ allow: false, reason: 'no_feeds' });
  });

  it('grants the operator role without feeds, only to users of the vendor tenant', () => {
    expect(evaluate({ tenant: tenant('vendor', []), user: user('vendor', ['operator']), access: 'operator', feeds: [], operatorTenant })).toEqual({
      allow: true,
      feeds: [],
      rights: {},
      roles: ['operator'],
    });
    expect(evaluate({ tenant: tenant('acme'), user: user('acme', ['operator']), access: 'operator', feeds: [], operatorTenant })).toEqual({ allow: false, reason: 'role_missing' });
    expect(evaluate({ tenant: tenant('vendor', []), user: user('vendor', ['full-control']), access: 'operator', feeds: [], operatorTenant })).toEqual({
      allow: false,
      reason: 'role_missing',
    });
    expect(evaluate({ tenant: tenant('vendor', [], 'suspended'), user: user('vendor', ['operator']), access: 'operator', feeds: [], operatorTenant })).toEqual({
      allow: false,
      reason: 'tenant_suspended',
    });
  });

  it('answers what each role grants, feed by feed (the role table), and listen at most on the audit feed', () => {
    const acme = tenant('acme', ['edr-events', 'audit']);
    const grant = (roles: User['roles'], feeds: string[] = []) => evaluate({ tenant: acme, user: user('acme', roles), access: 'feeds', feeds, operatorTenant });
    expect(grant(['read-only'])).toEqual({ allow: true, feeds: ['edr-events', 'audit'], rights: { 'edr-events': 'listen', audit: 'listen' }, roles: ['read-only'] });
    expect(grant(['producer'])).toEqual({ allow: true, feeds: ['edr-events'], rights: { 'edr-events': 'send' }, roles: ['producer'] });
    expect(grant(['producer', 'read-only'])).toMatchObject({ rights: { 'edr-events': 'listen-send', audit: 'listen' } });
    expect(grant(['full-control'])).toMatchObject({ rights: { 'edr-events': 'listen-send', audit: 'listen' } });
    expect(grant(['producer'], ['audit'])).toEqual({ allow: false, reason: 'role_missing' });
    expect(grant(['producer'], ['dns-logs'])).toEqual({ allow: false, reason: 'feed_not_entitled' });
    for (const roles of [['downloader'], ['uploader', 'publisher']] as Array<User['roles']>) expect(grant(roles)).toEqual({ allow: false, reason: 'role_missing' });
    expect(evaluate({ tenant: tenant('vendor'), user: user('vendor', ['operator']), access: 'feeds', feeds: [], operatorTenant })).toEqual({ allow: false, reason: 'role_missing' });
  });

  it('answers release rights product by product: downloaders on the tier’s products, uploaders and publishers on their own', () => {
    const acme = tenant('acme');
    const tierProducts = [{ product: 'edr-agent', versions: '>=1.0.0' }];
    const releases = (roles: User['roles'], products: string[] = [], feeds: string[] = []) =>
      evaluate({ tenant: acme, user: user('acme', roles, products), access: 'releases', feeds, operatorTenant, tierProducts });
    expect(releases(['downloader'])).toEqual({ allow: true, feeds: [], rights: {}, roles: ['downloader'], releases: { 'edr-agent': { rights: ['download'], versions: '>=1.0.0' } } });
    expect(releases(['uploader'], ['sensor'])).toMatchObject({ allow: true, releases: { sensor: { rights: ['upload'], versions: '*' } } });
    expect(releases(['publisher'], ['sensor'])).toMatchObject({ allow: true, releases: { sensor: { rights: ['download', 'upload', 'publish', 'withdraw'] } } });
    // a role that grants release rights, but on no product
    expect(releases(['uploader'])).toEqual({ allow: false, reason: 'product_not_entitled' });
    expect(evaluate({ tenant: acme, user: user('acme', ['downloader']), access: 'releases', feeds: [], operatorTenant })).toEqual({ allow: false, reason: 'product_not_entitled' });
    // feed roles and the operator grant nothing on releases; releases ask for no feed
    for (const roles of [['full-control'], ['read-only', 'producer'], ['operator']] as Array<User['roles']>) expect(releases(roles, ['sensor'])).toEqual({ allow: false, reason: 'role_missing' });
    expect(releases(['downloader'], [], ['edr-events'])).toEqual({ allow: false, reason: 'feed_not_entitled' });
    // the tenant must be active and the user its own, as for feeds
    expect(evaluate({ tenant: tenant('acme', [], 'suspended'), user: user('acme', ['downloader']), access: 'releases', feeds: [], operatorTenant, tierProducts })).toEqual({
      allow: false,
      reason: 'tenant_suspended',
    });
    expect(evaluate({ tenant: acme, user: user('other', ['downloader']), access: 'releases', feeds: [], operatorTenant, tierProducts })).toEqual({ allow: false, reason: 'user_unknown' });
  });
});
