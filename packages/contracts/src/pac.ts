import { z } from 'zod';
import { Rights, TenantId } from './common.ts';

export const SasRequest = z.object({
  refresh_token: z.string().min(1).max(8192),
  /** topic URI; default: the tenant's first feed */
  resource: z.string().url().max(2048).optional(),
  /** default: every right the token grants on the resource ('listen-send' when both) */
  rights: Rights.optional(),
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

/**
 * Topic service → PAC (mTLS): is this SAS key's signature genuine? PAC checks it against the
 * tenant's keys, which never leave PAC; the topic service checks expiry, resource and rights.
 */
export const SasKeyCheckRequest = z.object({ sas_key: z.string().min(1).max(4096) });
export type SasKeyCheckRequest = z.infer<typeof SasKeyCheckRequest>;

/** A genuine key's signed fields and id, or only `valid: false` (malformed, forged, or an unknown tenant). */
export const SasKeyCheck = z.discriminatedUnion('valid', [
  z.object({
    valid: z.literal(true),
    key_id: z.string(),
    /** the resource URI the key is signed for (sr, decoded) */
    resource: z.string(),
    key_name: Rights,
    /** se: unix seconds */
    expiry: z.number().int(),
    /** how many times the tenant's keys were rotated: a verdict from an older generation is stale */
    generation: z.number().int().min(0),
  }),
  z.object({ valid: z.literal(false) }),
]);
export type SasKeyCheck = z.infer<typeof SasKeyCheck>;

/**
 * Operator → PAC: one rights policy's keys, as Azure lists them (keyName, primaryKey, secondaryKey):
 * with the key name and one of these, Azure's SDKs mint SAS keys for the tenant's topics.
 */
export const SasPolicyKeys = z.object({
  tenant: TenantId,
  key_name: Rights,
  primary_key: z.string(),
  secondary_key: z.string(),
});
export type SasPolicyKeys = z.infer<typeof SasPolicyKeys>;

/** Topic service → PAC (mTLS): whether an issued SAS key has been revoked. */
export const SasKeyStatus = z.object({
  key_id: z.string(),
  revoked: z.boolean(),
  /** RFC 9449: the key is bound to the DPoP key with this RFC 7638 thumbprint; every use needs a proof signed with it */
  jkt: z.string().optional(),
});
export type SasKeyStatus = z.infer<typeof SasKeyStatus>;
