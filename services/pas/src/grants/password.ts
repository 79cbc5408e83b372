import type { AuditScope } from '@keyway/audit';
import { InvalidGrant } from '@keyway/kit';
import { ApiError } from '@keyway/clients';
import { Email, type AuthenticationContext } from '@keyway/contracts';
import { authorize, requestedAccess, rethrowUpstream } from './authorize.ts';
import { authTimeNow, DEFAULT_CLIENT_ID, issuePair, type Grant, type GrantContext, type GrantOrigin } from './context.ts';
import { loginKey } from './dpop.ts';
import { requireSecondFactor } from './second-factor.ts';
import { idpBusy, throttledLogin } from './throttled-login.ts';

/**
 * RFC 6749 §4.3: authenticate at the IdP, authorize at the entitlement service, issue the pair.
 * `scope=operator` logs an operator in: the operator role is authorized instead of feeds;
 * `scope=releases` asks for release rights (the releases service's token).
 */
export const password: Grant<'password'> = {
  grantType: 'password',
  issued: 'token.issued',
  async handler(params, context, origin, audit) {
    const requested = requestedAccess(params.scope, context.settings);
    // the proof first: a client told to fetch a nonce has not spent a login attempt
    const jkt = await loginKey(context, origin, audit, 'password');
    const subject = await authenticatePassword(context, origin, audit, params.username, params.password, params.otp);
    const granted = await authorize(context.entitlement, subject.sub, subject.tenant, requested);
    requireSecondFactor(granted.access, subject.authentication, audit);
    return issuePair(context, audit, { sub: subject.sub, tid: subject.tenant, ...granted, client_id: DEFAULT_CLIENT_ID }, subject.authentication, { jkt });
  },
};

/** A person the IdP verified: who, how (amr) and when, and whether they have a second factor to ask for. */
export interface AuthenticatedPerson {
  sub: string;
  tenant: string;
  email: string;
  authentication: AuthenticationContext;
  secondFactor: boolean;
}

/**
 * Email + password (and, when sent, a second factor's code) checked at the IdP under the login
 * throttle: the password grant's and the login page's one way to authenticate a person. A wrong or
 * spent code is the same invalid_grant as a wrong password and counts the same. The subject and
 * tenant are noted for the trail.
 */
export async function authenticatePassword(context: GrantContext, origin: GrantOrigin, audit: AuditScope, name: string, secret: string, otp?: string): Promise<AuthenticatedPerson> {
  // Accounts are named by their email (contracts Email, as the IdP keys them). Anything else names no
  // account: the same answer as a wrong password (RFC 6749 §5.2 invalid_grant), counted as a failure
  // of its source, and, like every name that is not an email, kept out of the trail, so a password
  // typed into the username field never reaches it (style rule 11).
  const username = Email.safeParse(name);
  if (username.success) audit.note({ detail: { username: username.data } });
  const subject = await throttledLogin(context, origin.source, audit, username.success ? username.data : undefined, async () => {
    if (!username.success) throw audit.refuse(new InvalidGrant('the username or password is incorrect', 'the username is not an email address'), 'login.failed');
    return context.idp.verifyPassword(username.data, secret, otp).catch((err: unknown) => {
      // One answer for a wrong password and an unknown user (the IdP does not tell them apart either).
      if (err instanceof ApiError && err.code === 'invalid_grant') throw audit.refuse(new InvalidGrant('the username or password is incorrect'), 'login.failed');
      throw idpBusy(err, audit) ?? rethrowUpstream(err);
    });
  });
  audit.note({ subject: subject.sub, tenant: subject.tenant });
  if (subject.amr.includes('mfa')) audit.also({ action: 'mfa.succeeded', outcome: 'success', reason: 'otp' });
  const authentication = { amr: subject.amr, auth_time: authTimeNow(context.settings) };
  return { sub: subject.sub, tenant: subject.tenant, email: subject.email, authentication, secondFactor: subject.second_factor };
}
