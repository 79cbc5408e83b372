import { Discovery, Introspection, Jwks, SigningKeyList, SigningKeyRotation, TokenResponse } from '@keyway/contracts';
import { call, createHttp, form, FORM, send, toApiError, type ClientOptions } from './http.ts';

export function pasClient(options: ClientOptions) {
  const http = createHttp(options);
  const token = (fields: Record<string, string | undefined>, headers: Record<string, string> = {}) =>
    call(() => http.post('/oauth2/token', form(fields), { headers: { ...FORM, ...headers } }), TokenResponse, 'pas');
  return {
    /**
     * `clientAddress`: the address of the person signing in, when the caller signs them in on their
     * behalf (the console); PAS throttles logins by it, and believes it only from the entitlement service.
     */
    password: (username: string, password: string, scope?: string, clientAddress?: string) =>
      token({ grant_type: 'password', username, password, scope }, clientAddress ? { 'x-keyway-client-address': clientAddress } : {}),
    refresh: (refreshToken: string, scope?: string) => token({ grant_type: 'refresh_token', refresh_token: refreshToken, scope }),
    clientCredentials: (clientAssertion: string, scope?: string) =>
      token({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: clientAssertion,
        scope,
      }),
    /** RFC 7009: 200 whether or not the token was valid */
    revoke: async (token: string, hint?: 'refresh_token' | 'access_token') => {
      const response = await send(() => http.post('/oauth2/revoke', form({ token, token_type_hint: hint }), { headers: FORM }), 'pas');
      if (response.status !== 200) throw toApiError(response);
    },
    /** RFC 7662; the caller authenticates with its client certificate */
    introspect: (token: string, hint?: 'refresh_token' | 'access_token') =>
      call(() => http.post('/oauth2/introspect', form({ token, token_type_hint: hint }), { headers: FORM }), Introspection, 'pas'),
    discovery: () => call(() => http.get('/.well-known/openid-configuration'), Discovery, 'pas'),
    jwks: () => call(() => http.get('/.well-known/jwks.json'), Jwks, 'pas'),
    /** operator (mTLS): the signing keys, without key material */
    signingKeys: () => call(() => http.get('/admin/v1/signing-keys'), SigningKeyList, 'pas'),
    /** operator (mTLS): one rotation step; 409 with Retry-After while the next key is too freshly published */
    rotateSigningKeys: () => call(() => http.post('/admin/v1/signing-keys/rotate'), SigningKeyRotation, 'pas'),
  };
}
export type PasClient = ReturnType<typeof pasClient>;
