import { attributes, audited, mergeFields } from '@keyway/audit';
import type { TokenRequest, TokenResponse } from '@keyway/contracts';
import { UnsupportedGrantType } from '@keyway/kit';
import type { Grant, GrantContext, GrantOrigin } from './context.ts';
import { grants } from './index.ts';

type GrantType = TokenRequest['grant_type'];

/**
 * One token request (RFC 6749 §5), without HTTP: admitted by the noise gate, parsed, run by its grant
 * and audited as one step (packages/audit audited): the pair is returned only once the trail holds its
 * issuance (style rule 10: otherwise ServerError, and the tokens are never seen; the family they
 * started or rotated is then unusable, so the client logs in again once the trail is back); a refusal
 * is recorded, counted and thrown as the OAuthError the token endpoint answers.
 *
 * A refusal the grant did not name is authorization.denied for a 403 (the entitlement service's
 * denial; its reason code is the reason) and grant.failed otherwise. Issue 9: one that concerns no
 * authenticated party (a token that does not verify, a malformed or throttled request) is noise,
 * counted per source and window; a failed login is recorded within the stream's noise budget.
 *
 * `params` are the parsed request, or its parser: parsed inside the step, a malformed request is
 * counted like any other refusal.
 */
export async function grantTokens(context: GrantContext, origin: GrantOrigin, grantType: GrantType, params: TokenRequest | (() => TokenRequest)): Promise<TokenResponse> {
  const grant = grants[grantType] as (Pick<Grant<GrantType>, 'issued'> & { handler: (...args: Parameters<Grant<GrantType>['handler']>) => Promise<TokenResponse> }) | undefined;
  if (!grant) throw new UnsupportedGrantType(`grant_type ${grantType} is not supported`);
  return audited(
    context,
    {
      action: grant.issued,
      fields: mergeFields(origin.fields, { detail: { grant_type: grantType } }),
      refusal: (refusal) => (refusal.status === 403 ? { action: 'authorization.denied', reason: refusal.detail.error_detail ?? refusal.reason } : { action: 'grant.failed' }),
      count: (outcome, { tenant }) => {
        if (grant.issued === 'token.refreshed') context.metrics.tokensRefreshed.add(1, attributes({ tenant, outcome }));
        else context.metrics.tokensIssued.add(1, attributes({ tenant, grant_type: grantType, outcome }));
      },
      noise: { gate: context.noise, source: origin.source },
    },
    async (audit) => {
      // Issue 9: a source past its limit of unauthenticated refusals is refused before any work (and any audit write).
      await context.noise.admit(origin.source);
      return grant.handler(typeof params === 'function' ? params() : params, context, origin, audit);
    },
  );
}
