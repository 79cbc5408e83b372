import { audited, mergeFields, type AuditScope } from '@keyway/audit';
import type { AuthenticationContext } from '@keyway/contracts';
import { InvalidRequest } from '@keyway/kit';
import { authorize, requestedAccess, scopeOf } from '../grants/authorize.ts';
import type { GrantContext, GrantOrigin } from '../grants/context.ts';
import type { AuthenticatedPerson } from '../grants/password.ts';
import { requireSecondFactor } from '../grants/second-factor.ts';
import type { CodeGrant } from './codes.ts';
import type { PendingAuthorization, PendingAuthorizations } from './pending-requests.ts';

/**
 * The login form's work, audited as one step like a token request (grants/token-request.ts):
 * authenticate at the IdP under the password grant's throttles, authorize at the entitlement service
 * as the password grant does, end the pending request (single use) and issue a code bound to it.
 * Recorded as authorization_code.issued; refusals as login.failed / login.throttled (named by the
 * authentication), authorization.denied (the entitlement service's 403, with its reason code) or
 * authorization_code.failed.
 */
export async function signIn(
  context: GrantContext & { pending: PendingAuthorizations },
  origin: GrantOrigin,
  pending: { id: string; request: PendingAuthorization },
  /** the form's authentication (second-step.ts: the password, then a code when the account needs one; passkeys.ts: a passkey) */
  authenticate: (audit: AuditScope) => Promise<Pick<AuthenticatedPerson, 'sub' | 'tenant' | 'authentication'>>,
  hold?: HoldCode,
  /** how the form signs in, for the trail (detail.method) */
  method: 'password' | 'passkey' = 'password',
): Promise<string | undefined> {
  const { request } = pending;
  return audited(
    context,
    {
      action: 'authorization_code.issued',
      fields: mergeFields(origin.fields, { clientId: request.client_id, ...(method !== 'password' && { detail: { method } }) }),
      refusal: (refusal) => (refusal.status === 403 ? { action: 'authorization.denied', reason: refusal.detail.error_detail ?? refusal.reason } : { action: 'authorization_code.failed' }),
      noise: { gate: context.noise, source: origin.source },
    },
    async (audit) => {
      await context.noise.admit(origin.source);
      const subject = await authenticate(audit);
      return codeFor(context, audit, pending, subject, subject.authentication, hold);
    },
  );
}

/**
 * Keeps a signed-in person's code grant instead of issuing the code, to show a step first (the
 * passkey enrolment offer); answers whether it did. The step issues the code when it ends.
 */
export type HoldCode = (grant: CodeGrant) => Promise<boolean>;

/**
 * After any authentication (password, passkey): authorize at the entitlement service as the password
 * grant does, end the pending request (single use) and issue a code bound to it, carrying how the
 * person authenticated. With `hold`, the grant may be kept for a step first (undefined: no code yet).
 */
async function codeFor(
  context: GrantContext & { pending: PendingAuthorizations },
  audit: AuditScope,
  pending: { id: string; request: PendingAuthorization },
  subject: { sub: string; tenant: string },
  authentication: AuthenticationContext,
  hold?: HoldCode,
): Promise<string | undefined> {
  const { request } = pending;
  const { roles, access, rights, releases } = await authorize(context.entitlement, subject.sub, subject.tenant, requestedAccess(request.scope, context.settings));
  requireSecondFactor(access, authentication, audit);
  if (!(await context.pending.close(pending.id))) throw new InvalidRequest('this sign-in has already been completed', 'the pending request was closed by a concurrent post');
  const scope = scopeOf(access);
  const grant = {
    client_id: request.client_id,
    redirect_uri: request.redirect_uri,
    code_challenge: request.code_challenge,
    sub: subject.sub,
    tid: subject.tenant,
    roles,
    scope,
    rights,
    releases,
    authentication,
  };
  if (hold && (await hold(grant))) {
    audit.note({ detail: { code_id: 'held', held_for: 'passkey_enrolment', scope: scope.slice(0, 512) } });
    return undefined;
  }
  const { code, id } = await context.codes.issue(grant);
  audit.note({ detail: { code_id: id, scope: scope.slice(0, 512), amr: authentication.amr.join(' ') } });
  return code;
}
