import { InvalidClient } from '@keyway/kit';
import { ApiError } from '@keyway/clients';
import { authorize, requestedAccess, rethrowUpstream } from './authorize.ts';
import { issuePair, type Grant } from './context.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * RFC 6749 §4.4 for passwordless agents, the client authenticating with private_key_jwt (RFC 7523
 * §2.2): the IdP checks the assertion against the agent's registered key, the entitlement service
 * authorizes the user the client_id names, and the pair is issued.
 *
 * A refresh token is issued although RFC 6749 §4.4.3 says it SHOULD NOT be: PAC trades only refresh
 * tokens for SAS keys (design.md, step 5), so the agent needs one like any other.
 *
 * Refusals are 401 invalid_client without WWW-Authenticate: RFC 6749 §5.2 requires that header only
 * when the client authenticated with the Authorization header, and an assertion travels in the body.
 */
export const client_credentials: Grant<'client_credentials'> = {
  grantType: 'client_credentials',
  async handler(params, context) {
    // RFC 6749 §5.2: no client authentication, or an unsupported method, is invalid_client.
    if (params.client_assertion === undefined || params.client_assertion_type !== JWT_BEARER) {
      throw new InvalidClient(undefined, 'client_credentials requires private_key_jwt client authentication (RFC 7523 §2.2)');
    }
    const requested = requestedAccess(params.scope);
    const issuer = context.settings.issuer;
    // RFC 7523 §3 item 3: the issuer identifies PAS; the token endpoint URL may be used as well.
    const audience = [issuer, `${issuer.replace(/\/+$/, '')}/oauth2/token`];
    const subject = await context.idp.verifyAssertion(params.client_assertion, audience).catch((err: unknown) => {
      if (err instanceof ApiError && err.code === 'invalid_client') throw new InvalidClient();
      return rethrowUpstream(err);
    });
    // RFC 7521 §4.2: a client_id sent alongside the assertion must name the same client.
    if (params.client_id !== undefined && params.client_id !== subject.sub) {
      throw new InvalidClient(undefined, 'client_id does not match the assertion');
    }
    const { roles, access } = await authorize(context.entitlement, subject.sub, subject.tenant, requested);
    return issuePair(context, 'client_credentials', { sub: subject.sub, tid: subject.tenant, roles, access, client_id: subject.sub });
  },
};
