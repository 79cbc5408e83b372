import { z } from 'zod';
import { Subject, type CredentialRegistration } from '@keyway/contracts';
import { call, createHttp, type ClientOptions } from './http.ts';

export function idpClient(options: ClientOptions) {
  const http = createHttp(options);
  return {
    verifyPassword: (email: string, password: string) =>
      call(() => http.post('/v1/credentials/password/verify', { email, password }), Subject, 'idp'),
    register: (registration: CredentialRegistration) =>
      call(() => http.put(`/v1/credentials/${encodeURIComponent(registration.sub)}`, registration), z.object({ sub: z.string() }), 'idp'),
  };
}
export type IdpClient = ReturnType<typeof idpClient>;
