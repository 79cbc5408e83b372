import { z } from 'zod';
import { Amr, AuthenticationContext } from './authentication.ts';
import { Email, TenantId } from './common.ts';
import { SshPublicKeyLine } from './ssh.ts';

/** A user's subject id as the IdP keys credentials by it (the entitlement service's user id; the SFTP user name). */
export const SubjectId = z.string().min(1).max(128);

/**
 * A second factor's one-time code: a TOTP code (6 digits) or a recovery code (16 base32 letters, with
 * or without dashes). Keyway extension of the password grant (form parameter `otp`).
 */
export const OneTimeCode = z
  .string()
  .min(6)
  .max(64)
  .regex(/^[A-Za-z0-9 -]+$/, 'otp must be a 6-digit code or a recovery code');

export const PasswordCheck = z.object({ email: Email, password: z.string().min(1).max(1024), otp: OneTimeCode.optional() });
export type PasswordCheck = z.infer<typeof PasswordCheck>;

/** Who the credentials belong to. */
export const Subject = z.object({ sub: z.string(), tenant: TenantId, email: Email });
export type Subject = z.infer<typeof Subject>;

/**
 * A verified password (and code): whose they are, how they were proven (RFC 8176 amr: pwd, and otp
 * with mfa when a code was sent and matched), and whether the account has a second factor enrolled
 * (so the login page knows to ask for it).
 */
export const PasswordSubject = Subject.extend({ amr: z.array(Amr).min(1), second_factor: z.boolean() });
export type PasswordSubject = z.infer<typeof PasswordSubject>;

/** PAS → IdP: the login page's second step, once PAS has verified the account's password. */
export const OtpCheck = z.object({ sub: SubjectId, otp: OneTimeCode });

/** Shown once: the secret as an otpauth:// URI (and in base32 for typing), and ten single-use recovery codes. */
export const TotpEnrolment = z.object({
  otpauth_uri: z.string(),
  secret: z.string(),
  recovery_codes: z.array(z.string()).length(10),
  /** a factor was replaced (the old secret and recovery codes no longer work) */
  replaced: z.boolean(),
});
export type TotpEnrolment = z.infer<typeof TotpEnrolment>;

export const Password = z.string().min(12, 'must be at least 12 characters').max(1024);

/** Registering (or replacing) a user's credentials; sent by the entitlement service. */
/**
 * Proof of an operator action at the IdP: the operator's own access token (scope operator), as the
 * entitlement service received it, forwarded on credential changes to operator accounts.
 */
export const OPERATOR_PROOF_HEADER = 'x-keyway-operator-token';

export const CredentialRegistration = z.object({
  sub: SubjectId,
  tenant: TenantId,
  email: Email,
  password: Password.optional(),
});
export type CredentialRegistration = z.infer<typeof CredentialRegistration>;

/** RFC 7517 private members: a registration carrying any of them is a private key and is refused. */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const base64url = (bytes: number) =>
  z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'must be base64url')
    .length(Math.ceil((bytes * 4) / 3), `must encode ${bytes} bytes`);
const JwkKid = z.string().regex(/^[A-Za-z0-9._~-]{1,128}$/, 'must be 1-128 letters, digits or . _ ~ -');

/** The public keys an agent may register for RFC 7523 private_key_jwt: EC P-256 (ES256) or Ed25519 (EdDSA). */
export const ClientPublicJwk = z.discriminatedUnion('kty', [
  z.object({ kty: z.literal('EC'), crv: z.literal('P-256'), x: base64url(32), y: base64url(32), alg: z.literal('ES256').default('ES256'), kid: JwkKid.optional() }),
  z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: base64url(32), alg: z.literal('EdDSA').default('EdDSA'), kid: JwkKid.optional() }),
]);
export type ClientPublicJwk = z.output<typeof ClientPublicJwk>;

/** PUT …/keys/:kid: a client's public key; the kid is in the path. */
export const ClientKeyRegistration = z.object({
  jwk: z
    .record(z.string(), z.unknown())
    .refine((jwk) => !PRIVATE_JWK_MEMBERS.some((member) => member in jwk), 'must be a public key: private key members (such as "d") are refused')
    .pipe(ClientPublicJwk),
});
export type ClientKeyRegistration = z.input<typeof ClientKeyRegistration>;
export const ClientKeyId = JwkKid.describe('key id (JWS "kid")');

/** What a key registration answers (the key itself is not echoed). */
export const RegisteredClientKey = z.object({ sub: z.string(), kid: z.string(), alg: z.enum(['ES256', 'EdDSA']) });
export type RegisteredClientKey = z.infer<typeof RegisteredClientKey>;

/**
 * Releases (SFTP) → IdP: does `sub` hold a registered key equal to this OpenSSH public key? Only
 * ssh-ed25519 and ecdsa-sha2-nistp256 lines can match (the types a registered JWK can be). The SSH
 * signature is the caller's to verify; this answers only whose key it is.
 */
export const SshKeyCheck = z.object({ sub: SubjectId, public_key: SshPublicKeyLine });

/** The user holds the key: their tenant, and the kid it was registered under. */
export const SshKeyHolder = z.object({ sub: z.string(), tenant: TenantId, kid: z.string() });

/** PAS → IdP: verify an RFC 7523 client assertion for one of PAS's audiences (issuer, token endpoint). */
export const AssertionCheck = z.object({
  assertion: z.string().min(1).max(8192),
  audience: z.array(z.string().url()).min(1).max(4),
});
export type AssertionCheck = z.infer<typeof AssertionCheck>;

/**
 * Passkeys (WebAuthn Level 3): the options PAS hands the browser for navigator.credentials.create/get
 * (PublicKeyCredentialCreationOptionsJSON / RequestOptionsJSON, §5.4, §5.5), passed on as the IdP
 * made them; only the challenge is named here.
 */
export const WebAuthnOptions = z.looseObject({ challenge: z.string().regex(/^[A-Za-z0-9_-]{16,128}$/) });
export type WebAuthnOptions = z.infer<typeof WebAuthnOptions>;

const b64url = (max: number) =>
  z
    .string()
    .regex(/^[A-Za-z0-9_-]*$/, 'must be base64url')
    .max(max);

/** A credential as the browser's PublicKeyCredential.toJSON() gives it (RegistrationResponseJSON / AuthenticationResponseJSON), bounded in size. */
export const WebAuthnCredential = z.object({
  id: b64url(1366).min(1),
  rawId: b64url(1366).min(1),
  type: z.literal('public-key'),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  response: z.object({
    clientDataJSON: b64url(4096).min(1),
    // registration (AuthenticatorAttestationResponseJSON)
    attestationObject: b64url(16384).optional(),
    transports: z.array(z.string().max(32)).max(8).optional(),
    publicKey: b64url(4096).optional(),
    publicKeyAlgorithm: z.number().int().optional(),
    authenticatorData: b64url(4096).optional(),
    // authentication (AuthenticatorAssertionResponseJSON)
    signature: b64url(1024).optional(),
    userHandle: b64url(128).optional(),
  }),
});
export type WebAuthnCredential = z.infer<typeof WebAuthnCredential>;

/** PAS → IdP: registration options for a person PAS has just authenticated. */
export const PasskeyRegistrationStart = z.object({ sub: SubjectId });
/** `registered`: how many passkeys the person already has (PAS offers enrolment to those with none). */
export const PasskeyRegistrationOptions = z.object({ options: WebAuthnOptions, registered: z.number().int().nonnegative() });
export const PasskeyRegistration = z.object({ sub: SubjectId, credential: WebAuthnCredential });
export const RegisteredPasskey = z.object({ sub: z.string(), credential_id: z.string() });
export const PasskeyAuthenticationOptions = z.object({ options: WebAuthnOptions });
export const PasskeyAssertion = z.object({ credential: WebAuthnCredential });
/** Who signed in with the passkey, and how (amr hwk + mfa: a key held by an authenticator that verified the person). */
export const PasskeySubject = Subject.extend({ authentication: AuthenticationContext });
export type PasskeySubject = z.infer<typeof PasskeySubject>;
