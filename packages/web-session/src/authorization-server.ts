import { ApiError, createHttp, FORM, form, pasClient, send, toApiError, UnreachableError } from '@keyway/clients';
import { Jwks, TokenResponse, type Discovery } from '@keyway/contracts';
import { ServerError, TemporarilyUnavailable, type TlsSource } from '@keyway/kit';
import { remoteKeySet, verifyAccessToken, type AccessClaims } from '@keyway/tokens';
import type { SessionSettings } from './options.ts';

type Endpoints = Required<Pick<Discovery, 'authorization_endpoint' | 'token_endpoint' | 'revocation_endpoint' | 'jwks_uri'>>;

/** What PAS answered a code or refresh grant, the access token verified. */
export interface Tokens {
  accessToken: string;
  refreshToken: string;
  /** unix seconds */
  accessExp: number;
  /** seconds the refresh token lives, as PAS said */
  refreshExpiresIn: number;
  claims: AccessClaims;
}

/** PAS as this client sees it: its discovery document (read once, lazily), its token and revocation endpoints. */
export function authorizationServer(settings: SessionSettings, tls?: TlsSource) {
  const { issuer, caPem } = settings;
  // a public client: it trusts PAS, it shows no certificate
  const trust = tls ? { tls, anonymous: true } : { caPem };
  const http = createHttp({ baseUrl: issuer, ...trust });
  const pas = pasClient({ baseUrl: issuer, ...trust });
  let discovered: Promise<Endpoints> | undefined;

  async function discover(): Promise<Endpoints> {
    const metadata = await pas.discovery().catch((err: unknown) => {
      throw outage(err, 'discovery');
    });
    // RFC 8414 §3.3: the metadata must name the issuer it was asked of, or it is another server's (mix-up)
    if (metadata.issuer !== issuer) throw new ServerError(undefined, `discovery names issuer ${metadata.issuer}, configured ${issuer}`);
    const { authorization_endpoint, revocation_endpoint, token_endpoint, jwks_uri } = metadata;
    if (!authorization_endpoint || !revocation_endpoint) throw new ServerError(undefined, 'PAS publishes no authorization or revocation endpoint');
    // RFC 9207 §3: with this flag the client must insist on iss, which the callback does
    if (!metadata.code_challenge_methods_supported?.includes('S256') || metadata.authorization_response_iss_parameter_supported !== true) {
      throw new ServerError(undefined, 'PAS does not announce PKCE S256 and the RFC 9207 iss parameter');
    }
    return { authorization_endpoint, revocation_endpoint, token_endpoint, jwks_uri };
  }
  const endpoints = (): Promise<Endpoints> =>
    (discovered ??= discover().catch((err: unknown) => {
      // a failed read is tried again by the next request
      discovered = undefined;
      throw err;
    }));

  const keys = remoteKeySet(async () => {
    const answer = await send(async () => http.get((await endpoints()).jwks_uri), 'pas');
    if (answer.status !== 200) throw toApiError(answer);
    return Jwks.parse(answer.data);
  });

  async function token(fields: Record<string, string>): Promise<Tokens> {
    const answer = await send(async () => http.post((await endpoints()).token_endpoint, form(fields), { headers: FORM }), 'pas').catch((err: unknown) => {
      throw outage(err, 'token');
    });
    if (answer.status !== 200) throw outage(toApiError(answer), 'token');
    const pair = TokenResponse.parse(answer.data);
    // the token came from PAS over TLS; verifying it too (cheap) keeps a misconfigured audience or issuer from passing unseen
    const claims = await verifyAccessToken(pair.access_token, keys, { issuer, audience: settings.audience, clockToleranceSec: settings.clockToleranceSec }).catch((err: unknown) => {
      throw new ServerError(undefined, `PAS answered an access token this client cannot verify: ${(err as Error).message}`);
    });
    return { accessToken: pair.access_token, refreshToken: pair.refresh_token, accessExp: claims.exp, refreshExpiresIn: pair.refresh_expires_in, claims };
  }

  return {
    authorizationEndpoint: async () => (await endpoints()).authorization_endpoint,
    /** RFC 6749 §4.1.3 with RFC 7636 §4.5; a refusal is the ApiError PAS answered */
    redeem: (code: string, verifier: string) => token({ grant_type: 'authorization_code', code, redirect_uri: settings.redirectUri, client_id: settings.clientId, code_verifier: verifier }),
    /** RFC 6749 §6; PAS rotates the refresh token (RFC 9700 §4.14) */
    refresh: (refreshToken: string) => token({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    /** RFC 7009: revoking the refresh token revokes its family, so the access token too */
    async revoke(refreshToken: string): Promise<void> {
      const answer = await send(async () => http.post((await endpoints()).revocation_endpoint, form({ token: refreshToken, token_type_hint: 'refresh_token' }), { headers: FORM }), 'pas');
      if (answer.status !== 200) throw toApiError(answer);
    },
  };
}
export type AuthorizationServer = ReturnType<typeof authorizationServer>;

/** PAS not answering, or failing itself, is an outage here (503); its refusals (4xx) stay what they are. */
function outage(err: unknown, what: string): unknown {
  if (err instanceof UnreachableError || (err instanceof ApiError && err.status >= 500)) {
    return new TemporarilyUnavailable('the sign-in service is unavailable, retry later', `PAS ${what}: ${(err as Error).message}`, { 'Retry-After': '5' });
  }
  return err;
}
