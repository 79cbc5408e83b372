import type { EntitlementClient } from '@keyway/clients';
import { type DenialReason, rightsWithin, type Rights } from '@keyway/contracts';

/** The system of record's answer, now, for one key holder on one feed: the rights their roles grant there, or why none. */
export type HolderDecision = { allow: true; rights: Rights | undefined } | { allow: false; reason: DenialReason };

/** Asks the entitlement service; rejects when it cannot answer, which callers refuse on (503), never allow. */
export type HolderCheck = (holder: { sub: string; tenant: string; feed: string }) => Promise<HolderDecision>;

/**
 * Issue 11: PAC decides from the entitlement service (tenant active, user in it, roles granting the
 * rights), not from whether a change event has reached it yet. No cache: a suspension holds at the
 * next mint or key check.
 */
export function entitlementHolderCheck(entitlement: Pick<EntitlementClient, 'authorize'>): HolderCheck {
  return async ({ sub, tenant, feed }) => {
    const decision = await entitlement.authorize({ sub, tenant, feeds: [feed] });
    return decision.allow ? { allow: true, rights: decision.rights[feed] } : decision;
  };
}

/** Why the holder may not use `rights` on the feed any longer (a denial reason, or rights_not_granted), or undefined when they may. */
export function refusalOf(decision: HolderDecision, rights: Rights): DenialReason | 'rights_not_granted' | undefined {
  if (!decision.allow) return decision.reason;
  return rightsWithin(rights, decision.rights) ? undefined : 'rights_not_granted';
}
