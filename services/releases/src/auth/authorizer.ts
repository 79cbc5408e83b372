import { type AuthorizeDecision, entitlementRoutes, intersectReleaseRights, mayOnRelease, type ReleaseRight, type ReleaseRights } from '@keyway/contracts';
import { createHttp, routeCaller, type ClientOptions } from '@keyway/clients';
import type { Principal } from './principal.ts';

/**
 * The one place release rights come from: the entitlement service, asked at every request that reads
 * or writes a release (issue 13: "authorization at every open"), so a contract change holds at the
 * next click. The token's claim is only a first filter (release-rights.ts).
 */
export interface ReleaseAuthorizer {
  decide(principal: Pick<Principal, 'sub' | 'tenant'>): Promise<AuthorizeDecision>;
}

/** The entitlement service's authorize with `access: 'releases'`, over mTLS with the releases certificate. */
export function entitlementAuthorizer(options: ClientOptions): ReleaseAuthorizer {
  const api = routeCaller(createHttp(options), 'entitlement');
  return {
    decide: ({ sub, tenant }) => api.call(entitlementRoutes.authorize, { body: { sub, tenant, access: 'releases' } }),
  };
}

/** What a principal may do now: the entitlement answer, narrowed by the token's claim when it carries one. */
export interface CurrentRights {
  rights: ReleaseRights;
  /** the entitlement service's reason when it denies the user everything */
  denied?: string;
}

export async function currentRights(authorizer: ReleaseAuthorizer, principal: Principal): Promise<CurrentRights> {
  const decision = await authorizer.decide(principal);
  if (!decision.allow) return { rights: {}, denied: decision.reason };
  const granted = decision.releases ?? {};
  // a token never widens what the entitlement service grants now, nor what it granted at issuance
  return { rights: principal.claimed === undefined ? granted : intersectReleaseRights(principal.claimed, granted) };
}

/** The claim as a first filter: a token that does not name the right is refused before the entitlement service is asked. */
export const claimAllows = (principal: Principal, product: string, right: ReleaseRight, version?: string): boolean =>
  principal.claimed === undefined || mayOnRelease(principal.claimed, product, right, version);
