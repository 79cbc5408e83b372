import { InvalidGrant } from '@keyway/kit';
import { ApiError } from '@keyway/clients';
import { authorize, requestedAccess, rethrowUpstream } from './authorize.ts';
import { DEFAULT_CLIENT_ID, issuePair, type Grant } from './context.ts';

/**
 * RFC 6749 §4.3: authenticate at the IdP, authorize at the entitlement service, issue the pair.
 * `scope=operator` logs an operator in: the operator role is authorized instead of feeds.
 */
export const password: Grant<'password'> = {
  grantType: 'password',
  async handler(params, context) {
    const requested = requestedAccess(params.scope);
    const subject = await context.idp.verifyPassword(params.username, params.password).catch((err: unknown) => {
      if (err instanceof ApiError && err.code === 'invalid_grant') throw new InvalidGrant('the username or password is incorrect');
      return rethrowUpstream(err);
    });
    const { roles, access } = await authorize(context.entitlement, subject.sub, subject.tenant, requested);
    return issuePair(context, 'password', { sub: subject.sub, tid: subject.tenant, roles, access, client_id: DEFAULT_CLIENT_ID });
  },
};
