import type { AuditScope } from '@keyway/audit';
import { DpopRefused } from '@keyway/kit';
import type { GrantContext, GrantOrigin } from './context.ts';

/** The grants that start a family (a login); refresh_token continues one and keeps its binding. */
export const DPOP_LOGIN_GRANTS = ['password', 'client_credentials', 'authorization_code'] as const;
type LoginGrant = (typeof DPOP_LOGIN_GRANTS)[number];

/** RFC 9449 §5: a bad proof is invalid_dpop_proof (400), whatever the grant. */
const refused = (description: string) => new DpopRefused(400, 'invalid_dpop_proof', description);

/**
 * The key of the request's DPoP proof (RFC 9449 §4.3), checked for this request and, when `bound` is
 * given, for the key the presented refresh token is bound to; undefined when there is no proof and
 * none is needed. A key an operator revoked is refused like a bad proof. The answer that asks for a
 * nonce (RFC 9449 §8) is protocol, not an attempt: counted as noise, not recorded one by one.
 */
export async function proofKey(context: GrantContext, origin: GrantOrigin, audit: AuditScope, bound?: string): Promise<string | undefined> {
  if (origin.dpop === undefined) {
    if (bound !== undefined) throw refused('the credential is bound to a key (DPoP): a DPoP proof signed with it is required');
    return undefined;
  }
  const jkt = await origin.dpop(bound).catch((err: unknown) => {
    if (err instanceof DpopRefused && err.code === 'use_dpop_nonce') throw audit.refuse(err, 'dpop.nonce_required', { noise: true });
    throw err;
  });
  if (jkt !== undefined && (await context.dpop?.revoked.has(jkt))) throw refused('the DPoP key is revoked');
  return jkt;
}

/**
 * RFC 9449 §5 at a login: the key the new family is bound to, or undefined for a bearer login;
 * a grant listed in DPOP_REQUIRED_FOR refuses a login without a proof.
 */
export async function loginKey(context: GrantContext, origin: GrantOrigin, audit: AuditScope, grant: LoginGrant): Promise<string | undefined> {
  const jkt = await proofKey(context, origin, audit);
  if (jkt === undefined && context.dpop?.requiredFor.has(grant)) throw refused(`grant_type ${grant} requires a DPoP proof (RFC 9449): send a DPoP header`);
  return jkt;
}
