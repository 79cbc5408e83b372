import { z } from 'zod';

/**
 * How a person or agent authenticated, carried from the IdP's answer into every token PAS issues
 * (OpenID Connect Core §2 `amr`, `acr`, `auth_time`), and kept unchanged across refreshes: a refresh
 * is not a new authentication. Admin APIs read it to demand a second factor and a recent sign-in
 * (RFC 9470 step-up).
 *
 * `amr` values are RFC 8176's: `pwd` password, `otp` one-time code (TOTP or a recovery code), `hwk`
 * proof of possession of a key held by an authenticator (a passkey, WebAuthn with user verification),
 * `swk` a software key (an agent's private_key_jwt), `mfa` more than one factor.
 */
export const AMR = ['pwd', 'otp', 'hwk', 'swk', 'mfa'] as const;
export const Amr = z.enum(AMR);
export type Amr = z.infer<typeof Amr>;

/** The two assurance levels Keyway tells apart. */
export const ACR_SINGLE_FACTOR = 'urn:keyway:acr:1fa';
export const ACR_MULTI_FACTOR = 'urn:keyway:acr:mfa';
export type Acr = typeof ACR_SINGLE_FACTOR | typeof ACR_MULTI_FACTOR;

export const AuthenticationContext = z.object({
  amr: z.array(Amr).min(1).max(AMR.length),
  /** seconds since the epoch when the person (or agent) last proved the factors in amr */
  auth_time: z.number().int().nonnegative(),
});
export type AuthenticationContext = z.infer<typeof AuthenticationContext>;

/** A passkey with user verification is two factors on its own (something held, something known or are). */
export const acrOf = (amr: readonly Amr[]): Acr => (amr.includes('mfa') ? ACR_MULTI_FACTOR : ACR_SINGLE_FACTOR);
