import type { AuthorizeDecision, Role, Tenant, User } from '@keyway/contracts';

/**
 * The pure decision: default deny, and every denial says why. The user must belong to an active
 * tenant, hold the role asked for, and the tenant must be entitled to every feed asked for.
 *
 * The operator role is the exception to feeds: it opens the admin APIs for every tenant, so it asks
 * for no feed, and only users of the vendor's own tenant (`operatorTenant`) may hold it.
 */
export function evaluate(input: { tenant?: Tenant; user?: User; role: Role; feeds: string[]; operatorTenant: string }): AuthorizeDecision {
  const { tenant, user, role, feeds } = input;
  if (!tenant) return { allow: false, reason: 'tenant_unknown' };
  if (tenant.status !== 'active') return { allow: false, reason: 'tenant_suspended' };
  if (!user || user.tenant !== tenant.id) return { allow: false, reason: 'user_unknown' };
  if (!user.roles.includes(role)) return { allow: false, reason: 'role_missing' };
  if (role === 'operator') {
    if (tenant.id !== input.operatorTenant) return { allow: false, reason: 'role_missing' };
    if (feeds.length > 0) return { allow: false, reason: 'feed_not_entitled' };
    return { allow: true, feeds: [], roles: user.roles };
  }
  if (feeds.some((feed) => !tenant.feeds.includes(feed))) return { allow: false, reason: 'feed_not_entitled' };
  const granted = feeds.length > 0 ? feeds : tenant.feeds;
  if (granted.length === 0) return { allow: false, reason: 'no_feeds' };
  return { allow: true, feeds: granted, roles: user.roles };
}
