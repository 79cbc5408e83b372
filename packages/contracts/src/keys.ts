import { z } from 'zod';
import { TenantId } from './common.ts';

/** Operator (mTLS) → PAS: the answer to a signing-key rotation. */
export const SigningKeyRotation = z.object({
  /** the key new tokens are signed with */
  active_kid: z.string(),
  /** every kid the JWKS publishes: next, active and retiring */
  published_kids: z.array(z.string()),
});
export type SigningKeyRotation = z.infer<typeof SigningKeyRotation>;

/** Operator (mTLS) → PAS: the signing keys, public facts only (never key material). */
export const SigningKeyList = z.object({
  active_kid: z.string(),
  keys: z.array(
    z.object({
      kid: z.string(),
      state: z.enum(['next', 'active', 'retiring']),
      createdAt: z.string(),
      /** retiring keys: published until this time, when the last token they signed has expired */
      retireAfter: z.string().optional(),
      /** whether the JWKS lists it */
      published: z.boolean(),
    }),
  ),
});
export type SigningKeyList = z.infer<typeof SigningKeyList>;

/** RFC 7638 SHA-256 JWK thumbprint, base64url: what a DPoP-bound token names in cnf.jkt (RFC 9449 §6). */
export const JwkThumbprint = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be an RFC 7638 SHA-256 thumbprint, base64url');

/** Operator → PAS: a DPoP key pair revoked; its refresh families are revoked and PAS refuses its proofs from now on. */
export const DpopKeyRevocation = z.object({
  jkt: JwkThumbprint,
  /** the live refresh families bound to the key, each now revoked */
  revoked_families: z.number().int().min(0),
});
export type DpopKeyRevocation = z.infer<typeof DpopKeyRevocation>;

export const TenantKeyName = z.enum(['primary', 'secondary']);
export type TenantKeyName = z.infer<typeof TenantKeyName>;

/** Operator (mTLS) → PAC: regenerate one of a tenant's namespace keys and sign new SAS keys with it. */
export const SasKeyRotationRequest = z.object({ key: TenantKeyName });
export type SasKeyRotationRequest = z.infer<typeof SasKeyRotationRequest>;

/** The answer carries no key material. */
export const SasKeyRotation = z.object({ tenant: TenantId, rotated: TenantKeyName, signing_with: TenantKeyName });
export type SasKeyRotation = z.infer<typeof SasKeyRotation>;
