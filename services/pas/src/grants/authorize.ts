import { AccessDenied, InvalidScope, OAuthError, ServerError, TemporarilyUnavailable } from '@keyway/kit';
import { ApiError, UnreachableError, type EntitlementClient } from '@keyway/clients';
import { feedScope, feedsFromScope, OPERATOR_SCOPE, type DenialReason, type FeedRights, type Role } from '@keyway/contracts';

const DENIALS: Record<DenialReason, string> = {
  tenant_unknown: 'the tenant does not exist',
  tenant_suspended: 'the tenant is suspended',
  user_unknown: 'the user is not known to the entitlement service',
  role_missing: 'the user holds no role that grants this login',
  feed_not_entitled: 'the tenant is not entitled to the requested feed',
  no_feeds: 'the tenant has no feeds',
};

/**
 * What a token pair grants (RFC 6749 §3.3 scope): feeds ("feed:<name> …", none = every feed of the
 * tenant), or, asked for alone, the operator admin APIs (`operator`).
 */
export type Access = { kind: 'feeds'; feeds: string[] } | { kind: 'operator' };

/** Requested scope → access; only "feed:<name>" tokens, or "operator" alone, are defined. */
export function requestedAccess(scope: string | undefined): Access {
  const tokens = (scope ?? '').split(' ').filter(Boolean);
  if (tokens.includes(OPERATOR_SCOPE)) {
    if (tokens.length > 1) throw new InvalidScope('scope operator is asked for alone');
    return { kind: 'operator' };
  }
  const feeds = feedsFromScope(tokens.join(' '));
  if (feeds.length !== tokens.length || feeds.some((f) => !/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(f))) {
    throw new InvalidScope('scope must be space-separated feed:<name> values, or operator');
  }
  return { kind: 'feeds', feeds };
}

/** The access an issued token's scope grants (PAS wrote it, so it parses). */
export const grantedAccess = (scope: string): Access => (scope === OPERATOR_SCOPE ? { kind: 'operator' } : { kind: 'feeds', feeds: feedsFromScope(scope) });

/** The scope value of an access: what a pair's "scope" says (grantedAccess reads it back). */
export const scopeOf = (access: Access): string => (access.kind === 'operator' ? OPERATOR_SCOPE : access.feeds.map(feedScope).join(' '));

/** RFC 6749 §6: a refresh may narrow the scope, never widen it (nor trade feeds for operator or back). */
export function withinGrant(asked: Access, granted: Access): boolean {
  if (asked.kind === 'operator' || granted.kind === 'operator') return asked.kind === granted.kind;
  return asked.feeds.every((feed) => granted.feeds.includes(feed));
}

/**
 * Step 3 of the initial exchange, asked of the entitlement service: feeds need a role that grants a
 * right on them (the role table) and the tenant's entitlement to each feed; operator access needs the
 * operator role and no feed. Answers the user's roles, the access granted (the feeds the roles grant
 * a right on when none were named) and the rights granted on each feed (none for operator access).
 */
export async function authorize(entitlement: EntitlementClient, sub: string, tenant: string, access: Access): Promise<{ roles: Role[]; access: Access; rights: FeedRights }> {
  const request = access.kind === 'operator' ? { access: 'operator' as const, feeds: [] } : { access: 'feeds' as const, feeds: access.feeds };
  const decision = await entitlement.authorize({ sub, tenant, ...request }).catch(rethrowUpstream);
  if (!decision.allow) throw new AccessDenied(`${DENIALS[decision.reason]} (${decision.reason})`, decision.reason);
  if (access.kind === 'operator') return { roles: decision.roles, access, rights: {} };
  return { roles: decision.roles, access: { kind: 'feeds', feeds: decision.feeds }, rights: decision.rights };
}

/** An upstream that cannot answer means 503; anything else unexpected fails closed as server_error. */
export function rethrowUpstream(err: unknown): never {
  if (err instanceof OAuthError) throw err;
  if (err instanceof UnreachableError || (err instanceof ApiError && err.status === 503)) {
    throw new TemporarilyUnavailable('a dependency is unavailable; retry later', err.message, { 'retry-after': '5' });
  }
  throw new ServerError(undefined, err instanceof Error ? err.message : String(err));
}
