import { audited, mergeFields, type AuditScope } from '@keyway/audit';
import { InvalidRequest } from '@keyway/kit';
import { authorize, requestedAccess, scopeOf } from '../grants/authorize.ts';
import type { GrantContext, GrantOrigin } from '../grants/context.ts';
import type { AuthenticatedPerson } from '../grants/password.ts';
import { requireSecondFactor } from '../grants/second-factor.ts';
import type { PendingAuthorization, PendingAuthorizations } from './pending-requests.ts';
import type { SecondSteps } from './second-step.ts';

/**
 * The login form's work, audited as one step like a token request (grants/token-request.ts):
 * authenticate at the IdP under the password grant's throttles, authorize at the entitlement service
 * as the password grant does, end the pending request (single use) and issue a code bound to it.
 * Recorded as authorization_code.issued; refusals as login.failed / login.throttled (named by the
 * authentication), authorization.denied (the entitlement service's 403, with its reason code) or
 * authorization_code.failed.
 */
export async function signIn(
  context: GrantContext & { pending: PendingAuthorizations; secondSteps: SecondSteps },
  origin: GrantOrigin,
  pending: { id: string; request: PendingAuthorization },
  /** the form's authentication (second-step.ts: the password, then a code when the account needs one) */
  authenticate: (audit: AuditScope) => Promise<AuthenticatedPerson>,
): Promise<string> {
  const { request } = pending;
  return audited(
    context,
    {
      action: 'authorization_code.issued',
      fields: mergeFields(origin.fields, { clientId: request.client_id }),
      refusal: (refusal) => (refusal.status === 403 ? { action: 'authorization.denied', reason: refusal.detail.error_detail ?? refusal.reason } : { action: 'authorization_code.failed' }),
      noise: { gate: context.noise, source: origin.source },
    },
    async (audit) => {
      await context.noise.admit(origin.source);
      const subject = await authenticate(audit);
      const { roles, access, rights, releases } = await authorize(context.entitlement, subject.sub, subject.tenant, requestedAccess(request.scope, context.settings));
      requireSecondFactor(access, subject.authentication, audit);
      if (!(await context.pending.close(pending.id))) throw new InvalidRequest('this sign-in has already been completed', 'the pending request was closed by a concurrent post');
      const scope = scopeOf(access);
      const { code, id } = await context.codes.issue({
        client_id: request.client_id,
        redirect_uri: request.redirect_uri,
        code_challenge: request.code_challenge,
        sub: subject.sub,
        tid: subject.tenant,
        roles,
        scope,
        rights,
        releases,
        authentication: subject.authentication,
      });
      audit.note({ detail: { code_id: id, scope: scope.slice(0, 512) } });
      return code;
    },
  );
}
