import { z } from 'zod';
import { OPERATOR_PROOF_HEADER, RegisteredClientKey, Subject, type CredentialRegistration } from '@keyway/contracts';
import { call, createHttp, send, toApiError, type ClientOptions } from './http.ts';

export function idpClient(options: ClientOptions) {
  const http = createHttp(options);
  const proof = (operatorToken: string | undefined) => (operatorToken ? { headers: { [OPERATOR_PROOF_HEADER]: operatorToken } } : {});
  const keyPath = (sub: string, kid: string) => `/v1/credentials/${encodeURIComponent(sub)}/keys/${encodeURIComponent(kid)}`;
  return {
    verifyPassword: (email: string, password: string) =>
      call(() => http.post('/v1/credentials/password/verify', { email, password }), Subject, 'idp'),
    /** `operatorToken`: the operator's access token, the proof a change to an operator account needs */
    register: (registration: CredentialRegistration, operatorToken?: string) =>
      call(() => http.put(`/v1/credentials/${encodeURIComponent(registration.sub)}`, registration, proof(operatorToken)), z.object({ sub: z.string() }), 'idp'),
    remove: async (sub: string) => {
      const response = await send(() => http.delete(`/v1/credentials/${encodeURIComponent(sub)}`), 'idp');
      if (response.status !== 204) throw toApiError(response);
    },
    /** `created`: the kid was new (201) rather than replaced (200) */
    registerKey: async (sub: string, kid: string, jwk: object, operatorToken?: string) => {
      const response = await send(() => http.put(keyPath(sub, kid), { jwk }, proof(operatorToken)), 'idp');
      if (response.status !== 200 && response.status !== 201) throw toApiError(response);
      return { ...RegisteredClientKey.parse(response.data), created: response.status === 201 };
    },
    removeKey: async (sub: string, kid: string) => {
      const response = await send(() => http.delete(keyPath(sub, kid)), 'idp');
      if (response.status !== 204) throw toApiError(response);
    },
    /** RFC 7523 client authentication; audience = the values PAS answers to (issuer, token endpoint) */
    verifyAssertion: (assertion: string, audience: string[]) =>
      call(() => http.post('/v1/credentials/assertion/verify', { assertion, audience }), Subject, 'idp'),
  };
}
export type IdpClient = ReturnType<typeof idpClient>;
