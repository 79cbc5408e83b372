import { pacRoutes, type Rights, type SasRequest, type TenantKeyName } from '@keyway/contracts';
import { createHttp, type ClientOptions } from './http.ts';
import { routeCaller, type CallOptions } from './route.ts';

export function pacClient(options: ClientOptions) {
  const { call } = routeCaller(createHttp(options), 'pac', options.dpop);
  return {
    /** with DPoP, the proof names the refresh token (ath) */
    sas: (request: SasRequest) => call(pacRoutes.sas, { body: request }, { dpopCredential: request.refresh_token }),
    /** internal (mTLS, topic service only) */
    sasKeyStatus: (keyId: string) => call(pacRoutes.sasKeyStatus, { params: { keyId } }),
    /** internal (mTLS, topic service only): is this SAS key's signature genuine? */
    verifySasKey: (sasKey: string) => call(pacRoutes.verifySasKey, { body: { sas_key: sasKey } }),
    /** operator: one rights policy's keys, for Azure tooling (audited) */
    sasPolicyKeys: (tenant: string, keyName: Rights) => call(pacRoutes.sasPolicyKeys, { params: { tenant, key_name: keyName } }),
    /** operator: regenerate the tenant's primary or secondary key and sign new SAS keys with it; `accessToken` for an operator's own (the console's caller) */
    rotateSasKey: (tenant: string, key: TenantKeyName, callOptions?: Pick<CallOptions, 'accessToken'>) => call(pacRoutes.rotateSasKey, { params: { tenant }, body: { key } }, callOptions),
  };
}
export type PacClient = ReturnType<typeof pacClient>;
