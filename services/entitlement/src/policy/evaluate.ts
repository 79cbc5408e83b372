import { grantsAdmin, grantsFeeds, grantsReleases, releaseRightsOf, rightsByFeed, type AuthorizeDecision, type AuthorizeRequest, type Tenant, type TierProduct, type User } from '@keyway/contracts';

/**
 * The pure decision: default deny, and every denial says why. The user must belong to an active
 * tenant; the answer is what the user's roles grant (the role table, contracts roles.ts), feed by
 * feed, on the feeds asked for (the tenant must be entitled to each) or, none asked, on every feed of
 * the tenant the roles grant a right on.
 *
 * Operator access is the exception to feeds: it opens the admin APIs for every tenant, so it asks
 * for no feed, and only users of the vendor's own tenant (`operatorTenant`) may hold it.
 *
 * Releases access asks for no feed either: it answers, product by product, the release rights the
 * user's roles grant on the products of the tenant's tier (`tierProducts`) and on the user's own.
 */
export function evaluate(input: {
  tenant?: Tenant;
  user?: User;
  access: NonNullable<AuthorizeRequest['access']>;
  feeds: string[];
  operatorTenant: string;
  /** the products of the tenant's tier (none without a tier) */
  tierProducts?: readonly TierProduct[];
}): AuthorizeDecision {
  const { tenant, user, feeds } = input;
  if (!tenant) return { allow: false, reason: 'tenant_unknown' };
  if (tenant.status !== 'active') return { allow: false, reason: 'tenant_suspended' };
  if (!user || user.tenant !== tenant.id) return { allow: false, reason: 'user_unknown' };
  if (input.access === 'operator') {
    if (!grantsAdmin(user.roles) || tenant.id !== input.operatorTenant) return { allow: false, reason: 'role_missing' };
    if (feeds.length > 0) return { allow: false, reason: 'feed_not_entitled' };
    return { allow: true, feeds: [], rights: {}, roles: user.roles };
  }
  if (input.access === 'releases') {
    if (!grantsReleases(user.roles)) return { allow: false, reason: 'role_missing' };
    if (feeds.length > 0) return { allow: false, reason: 'feed_not_entitled' };
    const releases = releaseRightsOf(user.roles, user.products, input.tierProducts ?? []);
    if (Object.keys(releases).length === 0) return { allow: false, reason: 'product_not_entitled' };
    return { allow: true, feeds: [], rights: {}, roles: user.roles, releases };
  }
  if (!grantsFeeds(user.roles)) return { allow: false, reason: 'role_missing' };
  if (feeds.some((feed) => !tenant.feeds.includes(feed))) return { allow: false, reason: 'feed_not_entitled' };
  if (tenant.feeds.length === 0) return { allow: false, reason: 'no_feeds' };
  const rights = rightsByFeed(user.roles, feeds.length > 0 ? feeds : tenant.feeds);
  // a feed asked for that the roles grant nothing on (send-only roles on the listen-only audit feed)
  if (feeds.some((feed) => rights[feed] === undefined)) return { allow: false, reason: 'role_missing' };
  const granted = Object.keys(rights);
  if (granted.length === 0) return { allow: false, reason: 'role_missing' };
  return { allow: true, feeds: granted, rights, roles: user.roles };
}
