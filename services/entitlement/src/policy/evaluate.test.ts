import { describe, expect, it } from 'vitest';
import type { Tenant, User } from '@keyway/contracts';
import { evaluate } from './evaluate.ts';

const tenant = (id: string, feeds: string[] = ['edr-events'], status: Tenant['status'] = 'active'): Tenant => ({ id, name: id, status, feeds, createdAt: '' });
const user = (tenantId: string, roles: User['roles']): User => ({ id: 'u1', tenant: tenantId, email: 'a@b.example', roles, createdAt: '' });
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
});
