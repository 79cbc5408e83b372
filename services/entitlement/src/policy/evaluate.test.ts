import { describe, expect, it } from 'vitest';
import type { Tenant, User } from '@keyway/contracts';
import { evaluate } from './evaluate.ts';

const tenant = (id: string, feeds: string[] = ['edr-events'], status: Tenant['status'] = 'active'): Tenant => ({ id, name: id, status, feeds, createdAt: '' });
const user = (tenantId: string, roles: User['roles']): User => ({ id: 'u1', tenant: tenantId, email: 'a@b.example', roles, createdAt: '' });
const operatorTenant = 'vendor';

describe('evaluate', () => {
  it('grants the tenant’s feeds to a full-control user, and denies by default with a reason', () => {
    expect(evaluate({ tenant: tenant('acme'), user: user('acme', ['full-control']), role: 'full-control', feeds: [], operatorTenant })).toEqual({
      allow: true,
      feeds: ['edr-events'],
      roles: ['full-control'],
    });
    expect(evaluate({ tenant: undefined, user: undefined, role: 'full-control', feeds: [], operatorTenant })).toEqual({ allow: false, reason: 'tenant_unknown' });
    expect(evaluate({ tenant: tenant('acme', [], 'suspended'), user: user('acme', ['full-control']), role: 'full-control', feeds: [], operatorTenant })).toEqual({
      allow: false,
      reason: 'tenant_suspended',
    });
    expect(evaluate({ tenant: tenant('acme', []), user: user('acme', ['full-control']), role: 'full-control', feeds: [], operatorTenant })).toEqual({ allow: false, reason: 'no_feeds' });
  });

  it('grants the operator role without feeds, only to users of the vendor tenant', () => {
    expect(evaluate({ tenant: tenant('vendor', []), user: user('vendor', ['operator']), role: 'operator', feeds: [], operatorTenant })).toEqual({
      allow: true,
      feeds: [],
      roles: ['operator'],
    });
    expect(evaluate({ tenant: tenant('acme'), user: user('acme', ['operator']), role: 'operator', feeds: [], operatorTenant })).toEqual({ allow: false, reason: 'role_missing' });
    expect(evaluate({ tenant: tenant('vendor', []), user: user('vendor', ['full-control']), role: 'operator', feeds: [], operatorTenant })).toEqual({
      allow: false,
      reason: 'role_missing',
    });
    expect(evaluate({ tenant: tenant('vendor', [], 'suspended'), user: user('vendor', ['operator']), role: 'operator', feeds: [], operatorTenant })).toEqual({
      allow: false,
      reason: 'tenant_suspended',
    });
  });
});
