import { z } from 'zod';
import { DpopKeyRevocation, JwkThumbprint, SigningKeyList, SigningKeyRotation } from '../keys.ts';
import { AuthorizationRequest, Discovery, Introspection, Jwks, LoginForm, LoginOtpForm, PasAsset, PasskeyEnrolmentForm, PasskeyLoginForm, PasskeyOptionsRequest, TokenHintRequest, TokenRequest, TokenResponse, TotpEnrolmentForm } from '../pas.ts';
import { TotpEnrolment, WebAuthnOptions } from '../idp.ts';
import { authenticatedBy, noBody, jsonResponse, openApiDocument, operatorOnly, serviceOnly } from '../openapi.ts';
import { HostCertificateRequest, SshCertificateRequest, SshCertificateResponse } from '../ssh.ts';
import { pathsOf, route } from '../route.ts';

const FORM = ['application/x-www-form-urlencoded'];
const LOGIN_PAGE = { description: 'the login page (HTML5; its one script, /oauth2/assets/passkeys.js, only for passkeys; Content-Security-Policy default-src \'none\', script-src and connect-src \'self\')', schema: z.string(), type: 'text/html' };
const DpopKeyPath = z.object({ jkt: JwkThumbprint });
const BROWSER_ERRORS = 'Refusals are an HTML page for a browser (Accept: text/html) and `{ error, error_description }` otherwise.';

/** The pas service's operations, declared once (server binding, client, OpenAPI and the endpoint fuzz). */
export const pasRoutes = {
  authorize: route({
    method: 'get',
    path: '/oauth2/authorize',
    summary: 'authorization endpoint (RFC 6749 §4.1, PKCE RFC 7636 S256 only, RFC 9207 iss) for registered browser clients: the login page',
    description: `An unknown client_id or a redirect_uri not registered exactly is a 400 page, never a redirect; any other refusal redirects (303) to redirect_uri with error, state and iss. ${BROWSER_ERRORS}`,
    query: AuthorizationRequest,
    responses: { 200: LOGIN_PAGE, 303: noBody('Location: redirect_uri with error, error_description, state and iss') },
    errors: [400, 503],
  }),
  login: route({
    method: 'post',
    path: '/oauth2/login',
    summary: 'the login page’s form: authenticate at the IdP, authorize at the entitlement service, redirect with a single-use code',
    description: `Needs the pending request of the page PAS served and the cookie it set with it (CSRF). Success and an entitlement denial redirect (303) to redirect_uri with code or error=access_denied, state and iss; wrong credentials answer the page again (400, 429 when throttled). ${BROWSER_ERRORS}`,
    body: { schema: LoginForm, types: FORM },
    responses: { 303: noBody('Location: redirect_uri with code (or error), state and iss') },
    errors: [400, 415, 429, 503],
  }),
  passkeyOptions: route({
    method: 'post',
    path: '/oauth2/passkey/options',
    summary: 'the login page’s script: WebAuthn options for “Sign in with a passkey” (usernameless, user verification required)',
    description: 'Needs the pending request of the page and the cookie PAS set with it, like the form.',
    body: { schema: PasskeyOptionsRequest },
    responses: { 200: jsonResponse(z.object({ options: WebAuthnOptions }), 'options for navigator.credentials.get') },
    errors: [400, 415, 429, 503],
  }),
  passkeyLogin: route({
    method: 'post',
    path: '/oauth2/passkey/login',
    summary: 'sign in with a passkey: the IdP verifies the assertion, the entitlement service authorizes, redirect with a single-use code (amr hwk mfa)',
    description: `Needs the pending request and its cookie (CSRF). A refused passkey (unknown, replayed, another origin) answers the page again (400). ${BROWSER_ERRORS}`,
    body: { schema: PasskeyLoginForm, types: FORM },
    responses: { 303: noBody('Location: redirect_uri with code (or error), state and iss') },
    errors: [400, 415, 429, 503],
  }),
  passkeyEnrolment: route({
    method: 'post',
    path: '/oauth2/passkey/enrolment',
    summary: 'after a password sign-in of someone without a passkey: register one (credential) or not now (none); either way redirect with the code',
    description: `Needs the enrolment PAS offered and the cookie of the browser it offered it to. A refused registration answers the offer again (400). ${BROWSER_ERRORS}`,
    body: { schema: PasskeyEnrolmentForm, types: FORM },
    responses: { 303: noBody('Location: redirect_uri with code, state and iss') },
    errors: [400, 415, 503],
  }),
  asset: route({ method: 'get', path: '/oauth2/assets/{name}', summary: 'the login page’s script (passkeys: WebAuthn in the browser)', params: z.object({ name: PasAsset }), responses: { 200: { description: 'the file', type: 'text/javascript' } }, errors: [400] }),
  loginOtp: route({
    method: 'post',
    path: '/oauth2/login/otp',
    summary: 'the login page’s second step (issue 14): a TOTP or recovery code, after a correct password for an account with a second factor (always for scope operator)',
    description: `Needs the pending request and its cookie, as the first step. A wrong code answers the code page again (400; 429 when throttled); success continues as the first step does. ${BROWSER_ERRORS}`,
    body: { schema: LoginOtpForm, types: FORM },
    responses: { 303: noBody('Location: redirect_uri with code (or error), state and iss') },
    errors: [400, 415, 429, 503],
  }),
  enrolTotp: route({
    method: 'post',
    path: '/v1/mfa/totp',
    summary: 'Keyway extension: enrol a TOTP second factor (username, password; otp = a current code or a recovery code when one is enrolled already)',
    description: 'The first factor of an account is enrolled on trust (whoever knows the password first, like Keycloak’s Configure OTP required action); replacing it needs the current factor. Throttled as a login. The secret and the ten recovery codes are answered once (Cache-Control: no-store).',
    body: { schema: TotpEnrolmentForm, types: FORM },
    responses: { 200: jsonResponse(TotpEnrolment, 'the factor (shown once)') },
    errors: [400, 415, 429, 503],
  }),
  token: route({
    method: 'post',
    path: '/oauth2/token',
    summary: 'token endpoint (RFC 6749 §4.3 password, §6 refresh_token, §4.4 client_credentials with RFC 7523 private_key_jwt, §4.1.3 authorization_code with RFC 7636 PKCE)',
    description:
      'With a `DPoP` proof header (RFC 9449) the pair is bound to the proof’s key (`cnf.jkt`, token_type DPoP), and refreshing it needs a proof by the same key. Every answer carries a fresh `DPoP-Nonce`; a proof without it is refused with 400 use_dpop_nonce, a bad proof with 400 invalid_dpop_proof. Keyway extension of the password grant: `otp`, a TOTP code (RFC 6238) or a recovery code of the account’s second factor. `scope=operator` needs it (else 400 invalid_grant "the operator scope requires a second factor: send otp"); a wrong or spent code is the same invalid_grant as a wrong password. Every token carries `amr`, `acr` and `auth_time` (OpenID Connect Core §2); a refresh keeps them.',
    body: { schema: TokenRequest, types: FORM },
    responses: { 200: jsonResponse(TokenResponse, 'a new pair (Cache-Control: no-store)') },
    errors: [400, 401, 403, 415, 429, 503],
  }),
  revoke: route({ method: 'post', path: '/oauth2/revoke', summary: 'RFC 7009 revocation: either token of a pair revokes its family; 200 for unknown tokens too', body: { schema: TokenHintRequest, types: FORM }, responses: { 200: noBody('revoked, or nothing to revoke') }, errors: [400, 415] }),
  // PAC: refresh tokens at mint time and operator tokens at its admin API; the entitlement and audit services: operator tokens
  introspect: serviceOnly(['pac', 'entitlement', 'audit', 'releases'], route({ method: 'post', path: '/oauth2/introspect', summary: 'RFC 7662 introspection (PAC, the entitlement, audit and releases services)', body: { schema: TokenHintRequest, types: FORM }, responses: { 200: jsonResponse(Introspection, '{ active: false } for an invalid, expired or revoked token') }, errors: [400, 415] })),
  discovery: route({ method: 'get', path: '/.well-known/openid-configuration', summary: 'RFC 8414 authorization server metadata', responses: { 200: jsonResponse(Discovery, 'the metadata') } }),
  jwks: route({ method: 'get', path: '/.well-known/jwks.json', summary: 'the public signing keys (next, active, retiring)', responses: { 200: jsonResponse(Jwks, 'RFC 7517 JWK set') } }),
  sshCaPublicKey: route({
    method: 'get',
    path: '/.well-known/ssh-ca.pub',
    summary: 'the Keyway SSH CA’s public key: one OpenSSH line, for `@cert-authority` in known_hosts and TrustedUserCAKeys',
    responses: { 200: { description: 'the key line', schema: z.string(), type: 'text/plain' } },
  }),
  // any access token PAS issued: the SFTP server authorizes every operation itself
  sshCertificate: authenticatedBy(
    ['bearer', 'dpop'],
    [401, 429, 503],
  )(
    route({
      method: 'post',
      path: '/v1/ssh/certificates',
      summary: 'trade an access token for a short-lived OpenSSH user certificate (SSH_CERT_TTL_SEC, default 10 min): principal the user id, key id keyway:<tenant>:<user id>',
      description:
        'A DPoP-bound token (token_type DPoP) needs its proof, as at PAC. Only ssh-ed25519 and ecdsa-sha2-nistp256 keys are signed (400 invalid_request otherwise). The certificate has no critical options and no extensions; it is valid from a minute before issuance (clock skew). Recorded as ssh.certificate_issued.',
      body: { schema: SshCertificateRequest },
      responses: { 201: jsonResponse(SshCertificateResponse, 'the certificate (Cache-Control: no-store)') },
      errors: [400, 415],
    }),
  ),
  hostCertificate: serviceOnly(
    ['releases'],
    route({
      method: 'post',
      path: '/internal/v1/ssh/host-certificates',
      summary: 'an OpenSSH host certificate for the SFTP server’s host key (releases service only), valid SSH_HOST_CERT_TTL_SEC (default 7 days), principals the host names; a name outside SSH_HOST_CERT_NAMES is 403 access_denied',
      body: { schema: HostCertificateRequest },
      responses: { 201: jsonResponse(SshCertificateResponse, 'the certificate') },
      errors: [400, 403, 415],
    }),
  ),
  signingKeys: operatorOnly(route({ method: 'get', path: '/admin/v1/signing-keys', summary: 'the signing keys: kid, state, dates (no key material)', responses: { 200: jsonResponse(SigningKeyList, 'the stored ring') } })),
  revokeDpopKey: operatorOnly(
    route({
      method: 'post',
      path: '/admin/v1/dpop-keys/{jkt}/revoke',
      summary: 'revoke a DPoP key pair (RFC 9449): every refresh family bound to it ends, PAS refuses its proofs from then on, PAC revokes the SAS keys bound to it (dpop_key.revoked)',
      params: DpopKeyPath,
      responses: { 200: jsonResponse(DpopKeyRevocation, 'revoked (again: idempotent)') },
      errors: [400],
    }),
  ),
  rotateSigningKeys: operatorOnly(route({ method: 'post', path: '/admin/v1/signing-keys/rotate', summary: 'one rotation step: next → active → retiring', description: '409 with Retry-After while the next key has not been published for SIGNING_KEY_LEAD_SEC.', responses: { 200: jsonResponse(SigningKeyRotation, 'rotated') }, errors: [409] })),
};

export const pasPaths = pathsOf(pasRoutes);

export const pasApi = openApiDocument({ title: 'Keyway PAS (OAuth 2.0 authorization server)', description: 'Issues access (20 min) and refresh (14 d) JWTs after the IdP authenticates and the entitlement service authorizes (password, client_credentials, or the browser login: authorization code with PKCE); rotates refresh tokens with reuse detection; revokes; introspects. `scope=operator` (alone) logs an operator in: the access token then names the admin APIs in "aud".' }, pasPaths);
