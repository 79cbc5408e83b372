import { z } from 'zod';
import { OneTimeCode } from './idp.ts';
import { ReleaseRights } from './roles.ts';

const scope = z.string().max(1000).optional();

/** RFC 7636 §4.1: code_verifier = 43*128unreserved. */
const CodeVerifier = z.string().regex(/^[A-Za-z0-9._~-]{43,128}$/, 'code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)');

/** RFC 6749 §4.3, §6, §4.4 (with RFC 7523 client authentication) and §4.1.3 (with RFC 7636 PKCE), discriminated on grant_type. */
export const TokenRequest = z.discriminatedUnion('grant_type', [
  z.object({
    grant_type: z.literal('password'),
    username: z.string().min(1).max(254),
    password: z.string().min(1).max(1024),
    scope,
    /** Keyway extension: a second factor's code (TOTP or recovery code); scope=operator requires it (amr mfa) */
    otp: OneTimeCode.optional().describe('Keyway extension: a TOTP code or a recovery code of the account’s second factor; required for scope=operator'),
  }),
  z.object({ grant_type: z.literal('refresh_token'), refresh_token: z.string().min(1).max(8192), scope }),
  z.object({
    grant_type: z.literal('client_credentials'),
    client_id: z.string().max(254).optional(),
    // Optional here so that missing client authentication answers invalid_client (RFC 6749 §5.2), not invalid_request.
    client_assertion_type: z.string().max(200).optional(),
    client_assertion: z.string().min(1).max(8192).optional(),
    scope,
  }),
  z.object({
    grant_type: z.literal('authorization_code'),
    code: z.string().min(1).max(256),
    redirect_uri: z.string().max(2000),
    // a public client identifies itself (RFC 6749 §4.1.3); PKCE stands in for its authentication
    client_id: z.string().min(1).max(128),
    code_verifier: CodeVerifier,
  }),
]);
export type TokenRequest = z.infer<typeof TokenRequest>;
export const GRANT_TYPES = ['password', 'refresh_token', 'client_credentials', 'authorization_code'] as const;

/** RFC 6749 Appendix A.5: state = 1*VSCHAR (%x20-7E). */
const VSCHAR = /^[\x20-\x7e]+$/;

/**
 * RFC 6749 §4.1.1 with RFC 7636 §4.3, as PAS accepts it: response_type code, PKCE with S256 only
 * (`plain` is refused, RFC 9700 §2.1.1), an exact redirect_uri (always sent, so the token request can
 * be held to it).
 */
export const AuthorizationRequest = z.object({
  response_type: z.literal('code'),
  client_id: z.string().min(1).max(128),
  redirect_uri: z.string().min(1).max(2000),
  scope: z.string().max(1000).optional(),
  state: z.string().max(1024).regex(VSCHAR, 'state must be printable ASCII (RFC 6749 Appendix A.5)').optional(),
  // BASE64URL(SHA256(code_verifier)) is always 43 characters
  code_challenge: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'code_challenge must be the 43-character BASE64URL of a SHA-256 (RFC 7636 §4.2)'),
  code_challenge_method: z.literal('S256', 'transform algorithm not supported: code_challenge_method must be S256 (RFC 7636 §4.3)'),
});
export type AuthorizationRequest = z.infer<typeof AuthorizationRequest>;

/** The login page's form (POST /oauth2/login): the pending authorization request it belongs to, and the credentials. */
export const LoginForm = z.object({
  request: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'the form does not belong to a sign-in PAS started'),
  email: z.string().min(1).max(254),
  password: z.string().min(1).max(1024),
  /** set by the page's script when the device can make a passkey (a user-verifying platform authenticator): offer one after the sign-in */
  offer_passkey: z.literal('1').optional(),
});

/** The login page's passkey sign-in (its script posts the credential as PublicKeyCredential.toJSON() text). */
export const PasskeyLoginForm = z.object({
  request: LoginForm.shape.request,
  credential: z.string().min(2).max(32_768),
});
/** The JSON the login page's script sends for WebAuthn options. */
export const PasskeyOptionsRequest = z.object({ request: LoginForm.shape.request });
/** The enrolment offer after a password sign-in: a passkey to register, or none ("Not now"). */
export const PasskeyEnrolmentForm = z.object({
  enrolment: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'the form does not belong to a sign-in PAS started'),
  credential: z.string().min(2).max(32_768).optional(),
  /** the "Not now" button */
  not_now: z.literal('1').optional(),
});
export const PasAsset = z.enum(['passkeys.js']);
/** The login page's second step (POST /oauth2/login/otp): the pending request, and the code. */
export const LoginOtpForm = z.object({
  request: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'the form does not belong to a sign-in PAS started'),
  otp: z.string().min(1).max(64),
});

/** POST /v1/mfa/totp (Keyway extension): enrol a TOTP factor; a replacement needs a current code (otp). */
export const TotpEnrolmentForm = z.object({ username: z.string().min(1).max(254), password: z.string().min(1).max(1024), otp: OneTimeCode.optional() });

export const TokenResponse = z.object({
  access_token: z.string(),
  // RFC 9449 §5: DPoP when the pair is bound to the key of the request's DPoP proof
  token_type: z.enum(['Bearer', 'DPoP']),
  expires_in: z.number().int(),
  refresh_token: z.string(),
  refresh_expires_in: z.number().int(),
  scope: z.string(),
});
export type TokenResponse = z.infer<typeof TokenResponse>;

/** RFC 8414 fields we publish. */
export const Discovery = z.object({
  issuer: z.string().url(),
  token_endpoint: z.string().url(),
  jwks_uri: z.string().url(),
  revocation_endpoint: z.string().url().optional(),
  introspection_endpoint: z.string().url().optional(),
  authorization_endpoint: z.string().url().optional(),
  grant_types_supported: z.array(z.string()),
  response_types_supported: z.array(z.string()),
  code_challenge_methods_supported: z.array(z.string()).optional(),
  authorization_response_iss_parameter_supported: z.boolean().optional(),
  token_endpoint_auth_methods_supported: z.array(z.string()),
  token_endpoint_auth_signing_alg_values_supported: z.array(z.string()).optional(),
  scopes_supported: z.array(z.string()).optional(),
  id_token_signing_alg_values_supported: z.array(z.string()).optional(),
  subject_types_supported: z.array(z.string()).optional(),
  /** RFC 9449 §5.1 */
  dpop_signing_alg_values_supported: z.array(z.string()).optional(),
  /** Keyway extension: the SSH CA's public key (one OpenSSH line), which signs user and host certificates */
  keyway_ssh_ca_public_key: z.string().optional(),
  /** Keyway extension: where an access token is traded for a short-lived SSH user certificate */
  keyway_ssh_certificate_endpoint: z.string().url().optional(),
});
export type Discovery = z.infer<typeof Discovery>;

export const Jwks = z.object({ keys: z.array(z.looseObject({ kty: z.string(), kid: z.string().optional() })) });

/** RFC 7662 §2.2 response; inactive tokens answer only { active: false }. */
export const Introspection = z.object({
  active: z.boolean(),
  token_type: z.enum(['access_token', 'refresh_token']).optional(),
  scope: z.string().optional(),
  client_id: z.string().optional(),
  sub: z.string().optional(),
  tid: z.string().optional(),
  roles: z.array(z.string()).optional(),
  /** the rights granted on each feed of the scope (feed tokens) */
  rights: z.record(z.string(), z.string()).optional(),
  /** product by product, the release rights granted (scope releases) */
  releases: ReleaseRights.optional(),
  fid: z.string().optional(),
  jti: z.string().optional(),
  iss: z.string().optional(),
  aud: z.union([z.string(), z.array(z.string())]).optional(),
  iat: z.number().optional(),
  nbf: z.number().optional(),
  exp: z.number().optional(),
  /** RFC 9449 §6.2: the thumbprint of the key a DPoP-bound token is bound to */
  cnf: z.object({ jkt: z.string() }).optional(),
});
export type Introspection = z.infer<typeof Introspection>;

/**
 * RFC 7009 revocation and RFC 7662 introspection requests. A hint the server does not know is ignored
 * (RFC 7009 §2.1), so any short string is accepted as one.
 */
export const TokenHintRequest = z.object({
  token: z.string().min(1).max(8192),
  token_type_hint: z.string().max(64).optional().describe('refresh_token or access_token; any other value is ignored'),
});
export type TokenHintRequest = z.input<typeof TokenHintRequest>;
