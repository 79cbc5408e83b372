import { InvalidGrant } from '@keyway/kit';
import { ApiError } from '@keyway/clients';
import { authorizeFeeds, requestedFeeds, rethrowUpstream } from './authorize.ts';
import { DEFAULT_CLIENT_ID, issuePair, type Grant } from './context.ts';

/** RFC 6749 §4.3: authenticate at the IdP, authorize at the entitlement service, issue the pair. */
export const password: Grant<'password'> = {
  grantType: 'password',
  async handler(params, context) {
    const feeds = requestedFeeds(params.scope);
    const subject = await context.idp.verifyPassword(params.username, params.password).catch((err: unknown) => {
      if (err instanceof ApiError && err.code === 'invalid_grant') throw new InvalidGrant('the username or password is incorrect');
      return rethrowUpstream(err);
    });
    const decision = await authorizeFeeds(context.entitlement, subject.sub, subject.tenant, feeds);
    return issuePair(context, 'password', { sub: subject.sub, tid: subject.tenant, roles: decision.roles, feeds: decision.feeds, client_id: DEFAULT_CLIENT_ID });
  },
};
