import { z } from 'zod';
import { RELEASES_SCOPE } from '@keyway/contracts';
import { configFields, kekConfig, requiredInProduction, seconds, sharedConfig, stepUpConfig } from '@keyway/kit';
import { BrowserClients } from './authorization/clients.ts';
import { DPOP_LOGIN_GRANTS } from './grants/dpop.ts';
import { DEFAULT_KEY_RING_RELOAD_SEC } from './keys/ring.ts';
import { DEFAULT_SIGNING_KEY_LEAD_SEC } from './keys/rotate.ts';
import { DEFAULT_SSH_CERT_TTL_SEC, DEFAULT_SSH_HOST_CERT_TTL_SEC } from './ssh/authority.ts';
import { DEFAULT_LOGIN_LIMITS } from './throttling/login-throttle.ts';

const count = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** A JSON value in one variable; unparsable JSON is a config error naming the key, like any other. */
const json = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be JSON' });
    return z.NEVER;
  }
});

export const PasEnv = requiredInProduction(
  z.object({
    ...sharedConfig,
    ...kekConfig,
    ...stepUpConfig,
    AMQP_URL: configFields.amqpUrl.describe(
      'RabbitMQ carrying the entitlement change events (one URL, or the nodes of one cluster separated by commas); unset (KEYWAY_ENV=development only) = embedded broker private to this process',
    ),
    PORT: configFields.port.default(8443).describe('HTTPS port'),
    PUBLIC_URL: z.string().url().describe('issuer URL: the "iss" of every token and the base of the discovery document'),
    ACCESS_AUDIENCE: z.string().url().describe('"aud" of access tokens: the PAC URL'),
    ADMIN_AUDIENCES: z
      .string()
      .optional()
      .transform((list) =>
        list
          ?.split(',')
          .map((url) => url.trim())
          .filter(Boolean),
      )
      .pipe(z.array(z.string().url()).min(1).optional())
      .describe(
        'comma-separated URLs of the admin APIs operator access tokens (scope=operator) are for, added to their "aud" after ACCESS_AUDIENCE (RFC 8707); default: ENTITLEMENT_URL, PUBLIC_URL (PAS\'s own signing-key admin API) and AUDIT_URL when set',
      ),
    RELEASES_AUDIENCE: configFields.optionalUrl.describe(
      '"aud" of access tokens with scope=releases: the releases service URL; unset = scope releases is refused (invalid_scope) and not in discovery',
    ),
    IDP_URL: z.string().url().describe('the IdP'),
    ENTITLEMENT_URL: z.string().url().describe('the entitlement service'),
    AUDIT_URL: configFields.optionalUrl.describe('the audit service, whose query API operators call with their access token (one of the default ADMIN_AUDIENCES)'),
    ACCESS_TOKEN_TTL_SEC: seconds(1200).describe('access token lifetime (default 20 min)'),
    REFRESH_TOKEN_TTL_SEC: seconds(1_209_600).describe('refresh token lifetime (default 14 days)'),
    REVOCATION_MODE: z.enum(['strict', 'lenient']).default('strict').describe('strict: entitlement removals revoke tokens within seconds; lenient: access lasts until the refresh token expires'),
    REFRESH_REUSE_LEEWAY_SEC: z.coerce
      .number()
      .int()
      .min(0)
      .max(60)
      .default(2)
      .describe('a spent refresh token presented again within this window (a retry or a concurrent refresh) is refused without revoking its family; later reuse revokes it'),
    CLOCK_TOLERANCE_SEC: z.coerce.number().int().min(0).max(300).default(30).describe('clock skew accepted when verifying tokens'),
    KEY_RING_RELOAD_SEC: seconds(DEFAULT_KEY_RING_RELOAD_SEC).describe('how often each instance reloads the signing keys from the store; instances converge on a rotation within it'),
    LOGIN_WINDOW_SEC: seconds(DEFAULT_LOGIN_LIMITS.windowSec).describe('the window every login and refusal limit counts over; a throttled key is refused until its window ends, never longer'),
    LOGIN_FAILURES_PER_ACCOUNT_SOURCE: count(DEFAULT_LOGIN_LIMITS.failuresPerAccountSource).describe(
      'failed logins (password or client assertion) of one account from one source address per window before 429; a successful login resets them',
    ),
    LOGIN_FAILURES_PER_ACCOUNT: count(DEFAULT_LOGIN_LIMITS.failuresPerAccount).describe(
      'failed logins of one account from all sources together per window before 429: the looser ceiling against guessing spread over many addresses',
    ),
    LOGIN_FAILURES_PER_SOURCE: count(DEFAULT_LOGIN_LIMITS.failuresPerSource).describe('failed logins from one source address, whatever the accounts, per window before 429 (password spraying)'),
    LOGIN_CONCURRENT_PER_SOURCE: count(DEFAULT_LOGIN_LIMITS.concurrentPerSource).describe('login requests one source address may have in flight on one instance; more answer 429 at once'),
    REFUSALS_PER_SOURCE: count(DEFAULT_LOGIN_LIMITS.refusalsPerSource).describe(
      'unauthenticated refusals (garbage tokens, malformed or throttled requests) of one source address per window; past it the token endpoint answers 429 before any work or audit write',
    ),
    REFUSAL_WINDOW_SEC: seconds(60).describe('the window unauthenticated refusals are aggregated over: one refusals.aggregated audit event per source address and window'),
    BROWSER_CLIENTS: json
      .pipe(BrowserClients)
      .default([])
      .describe(
        'the browser clients of the authorization code flow (GET /oauth2/authorize), a JSON array of {"client_id", "client_name"?, "redirect_uris": [exact https URIs], "scope": "the space-separated scope values it may ask for, and gets when it names none"}; public clients, PKCE (S256) mandatory; default none',
      ),
    AUTHORIZATION_CODE_TTL_SEC: z.coerce.number().int().min(1).max(600).default(60).describe('how long an authorization code may be redeemed (single use; RFC 6749 §4.1.2: at most 10 minutes)'),
    DPOP_REQUIRE_NONCE: z
      .stringbool()
      .default(true)
      .describe('RFC 9449 §8: a DPoP proof must carry a nonce PAS issued (DPoP-Nonce header, new every minute); without one the answer is 400 use_dpop_nonce with the nonce to use'),
    DPOP_PROOF_WINDOW_SEC: z.coerce.number().int().min(5).max(300).default(60).describe("how far a DPoP proof's iat may be from PAS's clock, either way"),
    DPOP_REQUIRED_FOR: z
      .string()
      .default('')
      .transform((list) =>
        list
          .split(',')
          .map((grant) => grant.trim())
          .filter(Boolean),
      )
      .pipe(z.array(z.enum(DPOP_LOGIN_GRANTS)))
      .describe(
        `comma-separated login grant types (${DPOP_LOGIN_GRANTS.join(', ')}) whose logins must present a DPoP proof (400 invalid_dpop_proof without one), e.g. client_credentials for every passwordless agent; default none: a login without a proof gets a bearer pair`,
      ),
    SSH_CERT_TTL_SEC: z.coerce
      .number()
      .int()
      .min(60)
      .max(3600)
      .default(DEFAULT_SSH_CERT_TTL_SEC)
      .describe('lifetime of the SSH user certificates `keyway ssh login` gets (POST /v1/ssh/certificates); with the short lifetime, revoking a session stops new SFTP logins within it'),
    SSH_HOST_CERT_TTL_SEC: z.coerce
      .number()
      .int()
      .min(3600)
      .max(90 * 86_400)
      .default(DEFAULT_SSH_HOST_CERT_TTL_SEC)
      .describe('lifetime of the host certificates the releases service gets for its SFTP host key (default 7 days); it asks for a new one well before'),
    SSH_HOST_CERT_NAMES: z
      .string()
      .regex(/^[A-Za-z0-9.:*-]+(,[A-Za-z0-9.:*-]+)*$/, 'comma-separated host names')
      .optional()
      .describe(
        "the only names a host certificate may carry (the SFTP server's SFTP_HOST_NAMES); default: RELEASES_AUDIENCE's host name. A stolen releases certificate cannot get the CA to vouch for another host",
      ),
    SIGNING_KEY_LEAD_SEC: seconds(DEFAULT_SIGNING_KEY_LEAD_SEC).describe(
      'how long a new signing key is published before a rotation may make it sign: at least KEY_RING_RELOAD_SEC, plus the JWKS refetch cooldown of verifiers',
    ),
  }),
  'REDIS_URL',
  'DATABASE_URL',
  'AMQP_URL',
  'KEYWAY_KEK_FILE',
)
  .superRefine((env, ctx) => {
    // keys/rotate.ts: a key signs only once every instance has had a reload period to publish it.
    if (env.SIGNING_KEY_LEAD_SEC < env.KEY_RING_RELOAD_SEC) {
      ctx.addIssue({ code: 'custom', path: ['SIGNING_KEY_LEAD_SEC'], message: 'must be at least KEY_RING_RELOAD_SEC' });
    }
    // a browser client registered for releases could never sign anyone in: say so at start
    if (env.RELEASES_AUDIENCE === undefined) {
      for (const [i, client] of env.BROWSER_CLIENTS.entries()) {
        if (client.scope.split(' ').includes(RELEASES_SCOPE)) ctx.addIssue({ code: 'custom', path: ['BROWSER_CLIENTS', i, 'scope'], message: 'scope releases needs RELEASES_AUDIENCE' });
      }
    }
  })
  .transform((env) => ({
    ...env,
    ADMIN_AUDIENCES: env.ADMIN_AUDIENCES ?? [env.ENTITLEMENT_URL, env.PUBLIC_URL, ...(env.AUDIT_URL ? [env.AUDIT_URL] : []), ...(env.RELEASES_AUDIENCE ? [env.RELEASES_AUDIENCE] : [])],
  }));
export type PasConfig = z.output<typeof PasEnv>;
