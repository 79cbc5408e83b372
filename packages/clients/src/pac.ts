import { SasResponse, TenantSasKeys, type SasRequest } from '@keyway/contracts';
import { call, createHttp, type ClientOptions } from './http.ts';

export function pacClient(options: ClientOptions) {
  const http = createHttp(options);
  return {
    sas: (request: SasRequest) => call(() => http.post('/v1/sas', request), SasResponse, 'pac'),
    /** internal (mTLS, topic service only) */
    tenantKeys: (tenant: string) => call(() => http.get(`/internal/v1/tenants/${encodeURIComponent(tenant)}/sas-keys`), TenantSasKeys, 'pac'),
  };
}
export type PacClient = ReturnType<typeof pacClient>;
