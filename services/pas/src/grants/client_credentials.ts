import { InvalidClient } from '@keyway/kit';
import { ApiError } from '@keyway/clients';
import { authorize, requestedAccess, rethrowUpstream } from './authorize.ts';
import { authTimeNow, issuePair, type Grant } from './context.ts';
import { loginKey } from './dpop.ts';
import { idpBusy, throttledLogin } from './throttled-login.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** What a client id may look like in the trail; anything else a caller sends is left out. */
const CLIENT_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** The assertion's "sub" as claimed, before any check (RFC 7523 §3: sub = client_id); undefined when unreadable. */
function unverifiedSubject(assertion: string | undefined): string | undefined {
  const payload = assertion?.split('.')[1];
  if (!payload) return undefined;
  try {
    const { sub } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof sub === 'string' ? sub : undefined;
  } catch {
    return undefined;
  }
}

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
 * Each is a failed login in the trail, under the client id the request claims.
 */
export const client_credentials: Grant<'client_credentials'> = {
  grantType: 'client_credentials',
  issued: 'token.issued',
  async handler(params, context, origin, audit) {
    const claimed = params.client_id ?? unverifiedSubject(params.client_assertion);
    const client = claimed !== undefined && CLIENT_ID.test(claimed) ? claimed : undefined;
    if (client !== undefined) audit.note({ clientId: client });
    // RFC 6749 §5.2: no client authentication, or an unsupported method, is invalid_client. It presents
    // no credential, so it is noise (counted per source and minute), not a failed login.
    const assertion = params.client_assertion;
    if (assertion === undefined || params.client_assertion_type !== JWT_BEARER) {
      throw audit.refuse(new InvalidClient(undefined, 'client_credentials requires private_key_jwt client authentication (RFC 7523 §2.2)'), 'login.failed', { noise: true });
    }
    const requested = requestedAccess(params.scope, context.settings);
    // the proof before the assertion: a client told to fetch a nonce has not spent its assertion's jti
    const jkt = await loginKey(context, origin, audit, 'client_credentials');
    const issuer = context.settings.issuer;
    // RFC 7523 §3 item 3: the issuer identifies PAS; the token endpoint URL may be used as well.
    const audience = [issuer, `${issuer.replace(/\/+$/, '')}/oauth2/token`];
    // Throttled like a password, under the client the request claims (the assertion's sub, unverified):
    // a forger naming a new client each time is still bound by the per-source limit.
    const subject = await throttledLogin(context, origin.source, audit, client, async () => {
      const verified = await context.idp.verifyAssertion(assertion, audience).catch((err: unknown) => {
        if (err instanceof ApiError && err.code === 'invalid_client') throw audit.refuse(new InvalidClient(), 'login.failed');
        throw idpBusy(err, audit) ?? rethrowUpstream(err);
      });
      // RFC 7521 §4.2: a client_id sent alongside the assertion must name the same client.
      if (params.client_id !== undefined && params.client_id !== verified.sub) {
        throw audit.refuse(new InvalidClient(undefined, 'client_id does not match the assertion'), 'login.failed');
      }
      return verified;
    });
    audit.note({ subject: subject.sub, tenant: subject.tenant, clientId: subject.sub });
    const granted = await authorize(context.entitlement, subject.sub, subject.tenant, requested);
    // RFC 8176 swk: proof of possession of a software-held key (the agent's private_key_jwt)
    return issuePair(context, audit, { sub: subject.sub, tid: subject.tenant, ...granted, client_id: subject.sub }, { amr: ['swk'], auth_time: authTimeNow(context.settings) }, { jkt });
  },
};
