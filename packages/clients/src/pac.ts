import { SasKeyCheck, SasKeyRotation, SasKeyStatus, SasPolicyKeys, SasResponse, type Rights, type SasRequest, type TenantKeyName } from '@keyway/contracts';
import { call, callConfig, createHttp, type CallOptions, type ClientOptions } from './http.ts';

export function pacClient(options: ClientOptions) {
  const http = createHttp(options);
  return {
    sas: (request: SasRequest) => call(() => http.post('/v1/sas', request), SasResponse, 'pac'),
    /** internal (mTLS, topic service only) */
    sasKeyStatus: (keyId: string) => call(() => http.get(`/internal/v1/sas-keys/${encodeURIComponent(keyId)}`), SasKeyStatus, 'pac'),
    /** internal (mTLS, topic service only): is this SAS key's signature genuine? */
    verifySasKey: (sasKey: string) => call(() => http.post('/internal/v1/sas-keys/verify', { sas_key: sasKey }), SasKeyCheck, 'pac'),
    /** operator: one rights policy's keys, for Azure tooling (audited) */
    sasPolicyKeys: (tenant: string, keyName: Rights) =>
      call(() => http.get(`/admin/v1/tenants/${encodeURIComponent(tenant)}/sas-policies/${encodeURIComponent(keyName)}`), SasPolicyKeys, 'pac'),
    /** operator (certificate, or an operator token: the client's or this call's): regenerate the tenant's primary or secondary key and sign new SAS keys with it */
    rotateSasKey: (tenant: string, key: TenantKeyName, perCall?: CallOptions) =>
      call(() => http.post(`/admin/v1/tenants/${encodeURIComponent(tenant)}/sas-keys/rotate`, { key }, callConfig(perCall)), SasKeyRotation, 'pac'),
  };
}
export type PacClient = ReturnType<typeof pacClient>;
