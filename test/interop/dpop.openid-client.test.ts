import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair } from 'jose';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RELEASES_CLIENT, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { browserLogin, PASSWORD, provisionReleaseTenant, provisionTenant } from '../helpers.ts';
import { fetchTrusting } from './keyway-ca-fetch.ts';

/**
 * Issue 14: a DPoP client library other than ours (openid-client v6, on oauth4webapi) obtains and
 * refreshes DPoP-bound tokens at PAS, fetching PAS's nonce by itself. This deployment requires DPoP
 * of every client_credentials login (DPOP_REQUIRED_FOR), as one protecting passwordless agents would.
 */
let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, dpopRequiredFor: ['client_credentials'] });
});
afterAll(() => suite?.close());

/** A passwordless agent: a user with a registered private_key_jwt key, and openid-client configured for it. */
async function agent() {
  const { tenant, user } = await provisionTenant(suite);
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  await suite.operator.registerKey(tenant, user.id, 'agent', await exportJWK(publicKey));
  const config = await client.discovery(new URL(suite.urls.pas), user.id, undefined, client.PrivateKeyJwt({ key: privateKey, kid: 'agent' }), {
    [client.customFetch]: fetchTrusting(suite.pki.ca.certPem),
  });
  return { tenant, user, config };
}

/** A DPoP key pair as openid-client makes it, and the thumbprint tokens bound to it carry. */
async function dpopKey(config: client.Configuration) {
  const keyPair = await client.randomDPoPKeyPair('ES256', { extractable: true });
  const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey), 'sha256');
  return { handle: client.getDPoPHandle(config, keyPair), jkt };
}

describe('openid-client v6 DPoP (getDPoPHandle) against PAS', () => {
  it('discovers the proof algorithms, obtains a DPoP-bound pair with client_credentials + private_key_jwt, and refreshes it with the same key', async () => {
    const { config } = await agent();
    expect(config.serverMetadata().dpop_signing_alg_values_supported).toEqual(['ES256', 'EdDSA']);
    const { handle, jkt } = await dpopKey(config);

    // the first request has no nonce: PAS answers use_dpop_nonce and openid-client retries with it
    const tokens = await client.clientCredentialsGrant(config, undefined, { DPoP: handle });
    expect(tokens.token_type).toBe('dpop');
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(decodeJwt(tokens.access_token).cnf).toEqual({ jkt });
    expect(decodeJwt(tokens.refresh_token!).cnf).toEqual({ jkt });

    // the nonce of the last answer is held by the handle; PAS's next one arrives with every answer
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: handle });
    expect(refreshed.token_type).toBe('dpop');
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(decodeJwt(refreshed.refresh_token!)).toMatchObject({ cnf: { jkt }, fid: decodeJwt(tokens.refresh_token!).fid });
    const again = await client.refreshTokenGrant(config, refreshed.refresh_token!, undefined, { DPoP: handle });
    expect(decodeJwt(again.access_token).cnf).toEqual({ jkt });
  });

  it('refuses the agent’s login without DPoP here (DPOP_REQUIRED_FOR), and its bound refresh token with another key or none', async () => {
    const { config } = await agent();
    await expect(client.clientCredentialsGrant(config)).rejects.toMatchObject({ code: 'OAUTH_RESPONSE_BODY_ERROR', error: 'invalid_dpop_proof' });

    const { handle } = await dpopKey(config);
    const tokens = await client.clientCredentialsGrant(config, undefined, { DPoP: handle });
    const thief = await dpopKey(config);
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: thief.handle })).rejects.toMatchObject({ error: 'invalid_dpop_proof' });
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_dpop_proof' });
    // neither attempt ended the agent's session
    expect((await client.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: handle })).token_type).toBe('dpop');
  });

  it('binds the authorization code flow’s pair (PKCE, public browser client): the nonce round trip does not spend the single-use code', async () => {
    const { email } = await provisionReleaseTenant(suite);
    const config = await client.discovery(new URL(suite.urls.pas), RELEASES_CLIENT.client_id, undefined, client.None(), { [client.customFetch]: fetchTrusting(suite.pki.ca.certPem) });
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const authorizationUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: RELEASES_CLIENT.redirect_uri,
      scope: RELEASES_CLIENT.scope,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    const callback = new URL((await browserLogin(suite, authorizationUrl.href, email, PASSWORD)).headers.location as string);
    const { handle, jkt } = await dpopKey(config);
    // a fresh handle holds no nonce: the first redemption is refused with use_dpop_nonce and sent again with the same code
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, undefined, { DPoP: handle });
    expect(tokens).toMatchObject({ token_type: 'dpop', scope: 'releases' });
    expect(decodeJwt(tokens.refresh_token!).cnf).toEqual({ jkt });
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: handle });
    expect(decodeJwt(refreshed.access_token).cnf).toEqual({ jkt });
  });
});
