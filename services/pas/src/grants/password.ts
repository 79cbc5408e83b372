import { InvalidGrant } from '@keyway/kit';
import { ApiError } from '@keyway/clients';
import { Email } from '@keyway/contracts';
import { authorize, requestedAccess, rethrowUpstream } from './authorize.ts';
import { DEFAULT_CLIENT_ID, issuePair, type Grant } from './context.ts';

/**
 * RFC 6749 §4.3: authenticate at the IdP, authorize at the entitlement service, issue the pair.
 * `scope=operator` logs an operator in: the operator role is authorized instead of feeds.
 */
export const password: Grant<'password'> = {
  grantType: 'password',
  issued: 'token.issued',
  async handler(params, context, _req, audit) {
    // The name tried is what a failed login is about; only a well-formed email is kept, so a password
    // typed into the username field never reaches the trail (style rule 11).
    const username = Email.safeParse(params.username);
    if (username.success) audit.note({ detail: { username: username.data } });
    const requested = requestedAccess(params.scope);
    const subject = await context.idp.verifyPassword(params.username, params.password).catch((err: unknown) => {
      // One answer for a wrong password and an unknown user (the IdP does not tell them apart either).
      if (err instanceof ApiError && err.code === 'invalid_grant') throw audit.refuse(new InvalidGrant('the username or password is incorrect'), 'login.failed');
      return rethrowUpstream(err);
    });
    audit.note({ subject: subject.sub, tenant: subject.tenant });
    const { roles, access } = await authorize(context.entitlement, subject.sub, subject.tenant, requested);
    return issuePair(context, audit, { sub: subject.sub, tid: subject.tenant, roles, access, client_id: DEFAULT_CLIENT_ID });
  },
};
