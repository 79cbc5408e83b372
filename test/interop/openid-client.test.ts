import { exportJWK, generateKeyPair } from 'jose';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RELEASES_CLIENT, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { browserLogin, PASSWORD, provisionReleaseTenant, provisionTenant } from '../helpers.ts';
import { fetchTrusting } from './keyway-ca-fetch.ts';

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL });
});
afterAll(() => suite?.close());

const discover = (clientId: string, auth: client.ClientAuth) => client.discovery(new URL(suite.urls.pas), clientId, undefined, auth, { [client.customFetch]: fetchTrusting(suite.pki.ca.certPem) });

describe('openid-client v6 against PAS', () => {
  it('discovers PAS and obtains tokens with the password grant as a public client (client_id sent, no authentication)', async () => {
    const { email } = await provisionTenant(suite);
    const config = await discover('keyway-importer', client.None());
    // discovery() refuses a document whose issuer is not the URL it was asked about (RFC 8414 §3.3).
    expect(config.serverMetadata()).toMatchObject({ issuer: suite.urls.pas, token_endpoint: `${suite.urls.pas}/oauth2/token` });
    expect(config.serverMetadata().token_endpoint_auth_methods_supported).toContain('private_key_jwt');

    const tokens = await client.genericGrantRequest(config, 'password', { username: email, password: PASSWORD });
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.expires_in).toBe(1200);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(tokens.scope).toBe('feed:edr-events');
  });

  it('obtains tokens with client_credentials, authenticating with PrivateKeyJwt (RFC 7523)', async () => {
    const { tenant, user } = await provisionTenant(suite);
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    await suite.operator.registerKey(tenant, user.id, 'interop', await exportJWK(publicKey));

    const config = await discover(user.id, client.PrivateKeyJwt({ key: privateKey, kid: 'interop' }));
    const tokens = await client.clientCredentialsGrant(config);
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.expires_in).toBe(1200);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(tokens.scope).toBe('feed:edr-events');
    // The refresh token works at PAC like any other.
    expect((await suite.pac.sas({ refresh_token: tokens.refresh_token! })).resource).toContain(`/tenants/${tenant}/topics/edr-events`);
  });

  it('obtains a releases token with client_credentials (a CI pipeline publishing without a password)', async () => {
    const { tenant, user } = await provisionReleaseTenant(suite, { roles: ['publisher'], products: ['edr-agent'] });
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    await suite.operator.registerKey(tenant, user.id, 'ci', await exportJWK(publicKey));
    const config = await discover(user.id, client.PrivateKeyJwt({ key: privateKey, kid: 'ci' }));
    expect(config.serverMetadata().scopes_supported).toEqual(expect.arrayContaining(['releases']));
    const tokens = await client.clientCredentialsGrant(config, { scope: 'releases' });
    expect(tokens.scope).toBe('releases');
    expect(JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString())).toMatchObject({
      aud: suite.urls.releases,
      releases: { 'edr-agent': { rights: ['download', 'upload', 'publish', 'withdraw'], versions: '*' } },
    });
  });

  it('completes the authorization code flow with PKCE as the registered browser client, then refreshes (RFC 6749 §4.1, RFC 7636, RFC 9207)', async () => {
    const { tenant, email } = await provisionReleaseTenant(suite);
    const config = await discover(RELEASES_CLIENT.client_id, client.None());
    expect(config.serverMetadata()).toMatchObject({
      authorization_endpoint: `${suite.urls.pas}/oauth2/authorize`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
    });
    expect(config.serverMetadata().grant_types_supported).toContain('authorization_code');

    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const authorizationUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: RELEASES_CLIENT.redirect_uri,
      scope: RELEASES_CLIENT.scope,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    // the person at the login page (a plain HTTPS client), then the browser's callback to the client
    const answer = await browserLogin(suite, authorizationUrl.href, email, PASSWORD);
    expect(answer.status).toBe(303);
    const callback = new URL(answer.headers.location as string);
    expect(callback.origin + callback.pathname).toBe(RELEASES_CLIENT.redirect_uri);
    expect(callback.searchParams.get('iss')).toBe(suite.urls.pas);

    // openid-client checks state and iss (the metadata promises it) and sends the verifier
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
    expect(tokens).toMatchObject({ token_type: 'bearer', expires_in: 1200, scope: 'releases' });
    expect(tokens.refresh_token).toEqual(expect.any(String));
    const releases = { 'edr-agent': { rights: ['download'], versions: '>=1.0.0' } };
    expect(JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString())).toMatchObject({ tid: tenant, client_id: RELEASES_CLIENT.client_id, releases });

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.scope).toBe('releases');
    // the pair is for the releases site: its access token names it, and carries the same rights
    expect(JSON.parse(Buffer.from(refreshed.access_token.split('.')[1]!, 'base64url').toString())).toMatchObject({ aud: suite.urls.releases, releases });
  });
});
