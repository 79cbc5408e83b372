import { z } from 'zod';
import { Rights } from './common.ts';

export const SasRequest = z.object({
  refresh_token: z.string().min(1).max(8192),
  /** topic URI; default: the tenant's first feed */
  resource: z.string().url().max(2048).optional(),
  rights: Rights.default('listen'),
});
export type SasRequest = z.input<typeof SasRequest>;

export const SasResponse = z.object({
  sas_key: z.string(),
  resource: z.string(),
  rights: Rights,
  expires_at: z.string(),
  key_id: z.string(),
});
export type SasResponse = z.infer<typeof SasResponse>;

/** Topic service → PAC (mTLS): the tenant's current signing keys, so the topic service can verify SAS keys. */
export const TenantSasKeys = z.object({
  tenant: z.string(),
  primary: z.string(),
  secondary: z.string(),
});
export type TenantSasKeys = z.infer<typeof TenantSasKeys>;

/** Topic service → PAC (mTLS): whether an issued SAS key has been revoked. */
export const SasKeyStatus = z.object({ key_id: z.string(), revoked: z.boolean() });
export type SasKeyStatus = z.infer<typeof SasKeyStatus>;
