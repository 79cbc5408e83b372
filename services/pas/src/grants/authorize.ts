import { AccessDenied, InvalidScope, OAuthError, ServerError, TemporarilyUnavailable } from '@keyway/kit';
import { ApiError, UnreachableError, type EntitlementClient } from '@keyway/clients';
import { feedsFromScope, type DenialReason } from '@keyway/contracts';

const DENIALS: Record<DenialReason, string> = {
  tenant_unknown: 'the tenant does not exist',
  tenant_suspended: 'the tenant is suspended',
  user_unknown: 'the user is not known to the entitlement service',
  role_missing: 'the user does not hold the full-control role',
  feed_not_entitled: 'the tenant is not entitled to the requested feed',
  no_feeds: 'the tenant has no feeds',
};

/** Requested scope → feed names; only "feed:<name>" tokens are defined (RFC 6749 §3.3). */
export function requestedFeeds(scope: string | undefined): string[] {
  if (!scope) return [];
  const tokens = scope.split(' ').filter(Boolean);
  const feeds = feedsFromScope(tokens.join(' '));
  if (feeds.length !== tokens.length || feeds.some((f) => !/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(f))) {
    throw new InvalidScope('scope must be space-separated feed:<name> values');
  }
  return feeds;
}

/** Step 3 of the initial exchange: full-control role and the feeds, asked of the entitlement service. */
export async function authorizeFeeds(entitlement: EntitlementClient, sub: string, tenant: string, feeds: string[]) {
  const decision = await entitlement.authorize({ sub, tenant, feeds, role: 'full-control' }).catch(rethrowUpstream);
  if (!decision.allow) throw new AccessDenied(`${DENIALS[decision.reason]} (${decision.reason})`, decision.reason);
  return decision;
}

/** An upstream that cannot answer means 503; anything else unexpected fails closed as server_error. */
export function rethrowUpstream(err: unknown): never {
  if (err instanceof OAuthError) throw err;
  if (err instanceof UnreachableError || (err instanceof ApiError && err.status === 503)) {
    throw new TemporarilyUnavailable('a dependency is unavailable; retry later', err.message, { 'retry-after': '5' });
  }
  throw new ServerError(undefined, err instanceof Error ? err.message : String(err));
}
