import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { z } from 'zod';
import { createHttp, routeCaller } from '@keyway/clients';
import { jsonResponse, route } from '@keyway/contracts';
import { listenHttps, type TlsMaterial } from '@keyway/kit';
import { staticTls } from '@keyway/tls';

/**
 * The peer the token figures are measured against: panva's oidc-provider, as its documentation
 * configures it for the client_credentials grant with ES256 JWT access tokens (resource indicators,
 * accessTokenFormat "jwt"), on the same HTTPS listener as Keyway's services, called through the same
 * client (axios keep-alive agent, declared route, answer parsed with zod).
 */
const RESOURCE = 'https://pac.bench';
const SCOPE = 'feed:edr-events';

const PeerTokenRequest = z.object({ grant_type: z.literal('client_credentials'), client_id: z.string(), client_secret: z.string(), scope: z.string(), resource: z.string() });
const PeerTokenResponse = z.object({ access_token: z.string(), token_type: z.literal('Bearer'), expires_in: z.number().int(), scope: z.string() });
const peerToken = route({
  method: 'post',
  path: '/token',
  summary: 'oidc-provider token endpoint',
  body: { schema: PeerTokenRequest, types: ['application/x-www-form-urlencoded'] },
  responses: { 200: jsonResponse(PeerTokenResponse, 'an ES256 JWT access token') },
});

export interface TokenPeer {
  /** one client_credentials grant: resolves once the JWT access token is in hand */
  clientCredentials(): Promise<string>;
  close(): Promise<void>;
}

export async function startTokenPeer(tls: TlsMaterial): Promise<TokenPeer> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'peer-es256' };
  const client = { client_id: 'bench-client', client_secret: randomBytes(32).toString('base64url') };
  const listener = await listenHttps((req, res) => handler(req, res), staticTls(tls), 0);
  const provider = new Provider(listener.url, {
    clients: [{ ...client, grant_types: ['client_credentials'], redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_post', id_token_signed_response_alg: 'ES256' }],
    jwks: { keys: [jwk] },
    scopes: [SCOPE],
    ttl: { ClientCredentials: 1200 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        getResourceServerInfo: () => ({ scope: SCOPE, audience: RESOURCE, accessTokenTTL: 1200, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
      },
    },
  });
  const handler = provider.callback();
  const { call } = routeCaller(createHttp({ baseUrl: listener.url, caPem: tls.caPem }), 'oidc-provider');
  return {
    clientCredentials: async () => (await call(peerToken, { body: { grant_type: 'client_credentials', ...client, scope: SCOPE, resource: RESOURCE } })).access_token,
    close: () => listener.close(),
  };
}
