import { AccessDenied, InvalidScope, OAuthError, ServerError, TemporarilyUnavailable } from '@keyway/kit';
import { ApiError, UnreachableError, type EntitlementClient } from '@keyway/clients';
import { feedScope, feedsFromScope, OPERATOR_SCOPE, RELEASES_SCOPE, type DenialReason, type FeedRights, type ReleaseRights, type Role } from '@keyway/contracts';

const DENIALS: Record<DenialReason, string> = {
  tenant_unknown: 'the tenant does not exist',
  tenant_suspended: 'the tenant is suspended',
  user_unknown: 'the user is not known to the entitlement service',
  role_missing: 'the user holds no role that grants this login',
  feed_not_entitled: 'the tenant is not entitled to the requested feed',
  no_feeds: 'the tenant has no feeds',
  product_not_entitled: 'the user’s roles grant a right on no product (the tenant’s tier and the user’s products give none)',
};

/**
 * What a token pair grants (RFC 6749 §3.3 scope): feeds ("feed:<name> …", none = every feed of the
 * tenant), or, asked for alone, the operator admin APIs (`operator`) or releases (`releases`).
 */
export type Access = { kind: 'feeds'; feeds: string[] } | { kind: 'operator' } | { kind: 'releases' };

/**
 * Requested scope → access; only "feed:<name>" tokens, or "operator" or "releases" alone, are
 * defined. Releases are offered only where the releases service's audience is configured.
 */
export function requestedAccess(scope: string | undefined, settings: { releasesAudience?: string | undefined }): Access {
  const tokens = (scope ?? '').split(' ').filter(Boolean);
  if (tokens.includes(OPERATOR_SCOPE)) {
    if (tokens.length > 1) throw new InvalidScope('scope operator is asked for alone');
    return { kind: 'operator' };
  }
  if (tokens.includes(RELEASES_SCOPE)) {
    // one audience per token (RFC 8707): a releases token is for the releases service, a feed token for PAC
    if (tokens.length > 1) throw new InvalidScope('scope releases is asked for alone');
    if (settings.releasesAudience === undefined) throw new InvalidScope('scope releases is not offered here (PAS has no RELEASES_AUDIENCE)');
    return { kind: 'releases' };
  }
  const feeds = feedsFromScope(tokens.join(' '));
  if (feeds.length !== tokens.length || feeds.some((f) => !/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(f))) {
    throw new InvalidScope('scope must be space-separated feed:<name> values, or operator, or releases');
  }
  return { kind: 'feeds', feeds };
}

/** The access an issued token's scope grants (PAS wrote it, so it parses). */
export function grantedAccess(scope: string): Access {
  if (scope === OPERATOR_SCOPE) return { kind: 'operator' };
  if (scope === RELEASES_SCOPE) return { kind: 'releases' };
  return { kind: 'feeds', feeds: feedsFromScope(scope) };
}

/** The scope value of an access: what a pair's "scope" says (grantedAccess reads it back). */
export function scopeOf(access: Access): string {
  if (access.kind === 'operator') return OPERATOR_SCOPE;
  if (access.kind === 'releases') return RELEASES_SCOPE;
  return access.feeds.map(feedScope).join(' ');
}

/** RFC 6749 §6: a refresh may narrow the scope, never widen it (nor trade feeds for operator or releases, or back). */
export function withinGrant(asked: Access, granted: Access): boolean {
  if (asked.kind !== 'feeds' || granted.kind !== 'feeds') return asked.kind === granted.kind;
  return asked.feeds.every((feed) => granted.feeds.includes(feed));
}

/** What the entitlement service granted: the user's roles, the access, feed rights (feeds), release rights (releases). */
export interface Authorized {
  roles: Role[];
  access: Access;
  rights: FeedRights;
  releases: ReleaseRights;
}

/**
 * Step 3 of the initial exchange, asked of the entitlement service: feeds need a role that grants a
 * right on them (the role table) and the tenant's entitlement to each feed; operator access needs the
 * operator role and no feed; releases need a role granting a release right on some product. Answers
 * the user's roles, the access granted (the feeds the roles grant a right on when none were named),
 * the rights granted on each feed and, for releases, on each product.
 */
export async function authorize(entitlement: EntitlementClient, sub: string, tenant: string, access: Access): Promise<Authorized> {
  const request = access.kind === 'feeds' ? { access: 'feeds' as const, feeds: access.feeds } : { access: access.kind, feeds: [] };
  const decision = await entitlement.authorize({ sub, tenant, ...request }).catch(rethrowUpstream);
  if (!decision.allow) throw new AccessDenied(`${DENIALS[decision.reason]} (${decision.reason})`, decision.reason);
  if (access.kind === 'operator') return { roles: decision.roles, access, rights: {}, releases: {} };
  if (access.kind === 'releases') return { roles: decision.roles, access, rights: {}, releases: decision.releases ?? {} };
  return { roles: decision.roles, access: { kind: 'feeds', feeds: decision.feeds }, rights: decision.rights, releases: {} };
}

/** An upstream that cannot answer means 503; anything else unexpected fails closed as server_error. */
export function rethrowUpstream(err: unknown): never {
  if (err instanceof OAuthError) throw err;
  if (err instanceof UnreachableError || (err instanceof ApiError && err.status === 503)) {
    throw new TemporarilyUnavailable('a dependency is unavailable; retry later', err.message, { 'retry-after': '5' });
  }
  throw new ServerError(undefined, err instanceof Error ? err.message : String(err));
}
