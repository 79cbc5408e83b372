import { Discovery, Jwks, TokenResponse } from '@keyway/contracts';
import { call, createHttp, form, FORM, type ClientOptions } from './http.ts';

export function pasClient(options: ClientOptions) {
  const http = createHttp(options);
  const token = (fields: Record<string, string | undefined>) => call(() => http.post('/oauth2/token', form(fields), { headers: FORM }), TokenResponse, 'pas');
  return {
    password: (username: string, password: string, scope?: string) => token({ grant_type: 'password', username, password, scope }),
    refresh: (refreshToken: string, scope?: string) => token({ grant_type: 'refresh_token', refresh_token: refreshToken, scope }),
    clientCredentials: (clientAssertion: string, scope?: string) =>
      token({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: clientAssertion,
        scope,
      }),
    discovery: () => call(() => http.get('/.well-known/openid-configuration'), Discovery, 'pas'),
    jwks: () => call(() => http.get('/.well-known/jwks.json'), Jwks, 'pas'),
  };
}
export type PasClient = ReturnType<typeof pasClient>;
