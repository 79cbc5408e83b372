import { z } from 'zod';
import {
  AssertionCheck,
  ClientKeyId,
  ClientKeyRegistration,
  CredentialRegistration,
  OtpCheck,
  PasskeyAssertion,
  PasskeyAuthenticationOptions,
  PasskeyRegistration,
  PasskeyRegistrationOptions,
  PasskeyRegistrationStart,
  PasskeySubject,
  PasswordCheck,
  PasswordSubject,
  RegisteredClientKey,
  RegisteredPasskey,
  SshKeyCheck,
  SshKeyHolder,
  Subject,
  SubjectId,
  TotpEnrolment,
} from '../idp.ts';
import { noBody, jsonResponse, openApiDocument, serviceOnly } from '../openapi.ts';
import { pathsOf, route } from '../route.ts';

const SubPath = z.object({ sub: SubjectId });
const KeyPath = SubPath.extend({ kid: ClientKeyId });

/** The IdP: verifies credentials for PAS, holds them for the entitlement service; internal callers only (mTLS). Declared once (server binding, client, OpenAPI and the endpoint fuzz). */
export const idpRoutes = {
  verifyPassword: serviceOnly(['pas'], route({ method: 'post', path: '/v1/credentials/password/verify', summary: 'verify an email and password, and a second factor’s code when `otp` is sent (PAS only); a TOTP step is accepted once per account, a recovery code once', body: { schema: PasswordCheck }, responses: { 200: jsonResponse(PasswordSubject, 'whose credentials they are, and how they were proven (amr)') }, errors: [400, 415, 429, 503] })),
  verifyOtp: serviceOnly(['pas'], route({ method: 'post', path: '/v1/credentials/otp/verify', summary: 'verify a second factor’s code for an account whose password PAS has just verified (the login page’s second step; PAS only)', body: { schema: OtpCheck }, responses: { 200: jsonResponse(PasswordSubject, 'whose code it is, amr [pwd, otp, mfa]') }, errors: [400, 415, 429, 503] })),
  enrolTotp: serviceOnly(['pas'], route({ method: 'post', path: '/v1/credentials/totp', summary: 'enrol (or replace) a TOTP factor after verifying the password (PAS only): the first factor on trust (the account has none), a replacement only with a current code or a recovery code. Recorded in the IdP’s audit stream (mfa.enrolled)', body: { schema: PasswordCheck }, responses: { 200: jsonResponse(TotpEnrolment, 'the secret and recovery codes, shown once') }, errors: [400, 415, 429, 503] })),
  verifyAssertion: serviceOnly(['pas'], route({ method: 'post', path: '/v1/credentials/assertion/verify', summary: 'verify an RFC 7523 private_key_jwt client assertion (PAS only)', body: { schema: AssertionCheck }, responses: { 200: jsonResponse(Subject, 'the client the assertion authenticates') }, errors: [400, 415, 429] })),
  verifySshKey: serviceOnly(['releases'], route({ method: 'post', path: '/v1/credentials/ssh-key/verify', summary: 'whether a user holds a registered public key (the private_key_jwt keys) equal to an OpenSSH public key, for the SFTP front, which verifies the SSH signature itself (releases only): the user’s tenant and the key’s kid. One answer, 400 invalid_grant, for a key the user does not hold, an unknown user and a removed one; a line that is not an ssh-ed25519 or ecdsa-sha2-nistp256 key is 400 invalid_request. Refusals are throttled and recorded as verifications are', body: { schema: SshKeyCheck }, responses: { 200: jsonResponse(SshKeyHolder, 'the user holds the key') }, errors: [400, 415, 429] })),
  register: serviceOnly(['entitlement'], route({ method: 'put', path: '/v1/credentials/{sub}', summary: 'register or replace a user’s credentials (entitlement only); without a password the stored one is kept. Replacing an operator account’s credentials needs X-Keyway-Operator-Token (an operator’s access token for the operator scope), else 403. Recorded in the IdP’s audit stream', params: SubPath, body: { schema: CredentialRegistration }, responses: { 200: jsonResponse(z.object({ sub: z.string() }), 'registered') }, errors: [400, 415] })),
  remove: serviceOnly(['entitlement'], route({ method: 'delete', path: '/v1/credentials/{sub}', summary: 'remove a user’s credentials and keys (entitlement only)', params: SubPath, responses: { 204: noBody('removed') }, errors: [400] })),
  registerKey: serviceOnly(['entitlement'], route({ method: 'put', path: '/v1/credentials/{sub}/keys/{kid}', summary: 'register a public key for private_key_jwt (entitlement only); for an operator account only with X-Keyway-Operator-Token, else 403. Recorded in the IdP’s audit stream', params: KeyPath, body: { schema: ClientKeyRegistration }, responses: { 200: jsonResponse(RegisteredClientKey, 'replaced'), 201: jsonResponse(RegisteredClientKey, 'registered') }, errors: [400, 404, 409, 415] })),
  removeKey: serviceOnly(['entitlement'], route({ method: 'delete', path: '/v1/credentials/{sub}/keys/{kid}', summary: 'remove a public key (entitlement only)', params: KeyPath, responses: { 204: noBody('removed') }, errors: [400, 404] })),
  // Passkeys (WebAuthn): challenges are single use and short-lived; the relying party is PAS's public origin (IdP PASSKEY_ORIGIN).
  passkeyRegistrationOptions: serviceOnly(['pas'], route({ method: 'post', path: '/v1/passkeys/registration/options', summary: 'WebAuthn registration options (user verification required, discoverable credential) for a person whose password the IdP verified in the last 10 minutes (else 400 invalid_grant), and how many passkeys they have (PAS only)', body: { schema: PasskeyRegistrationStart }, responses: { 200: jsonResponse(PasskeyRegistrationOptions, 'options for navigator.credentials.create') }, errors: [400, 404, 415, 503] })),
  passkeyRegistration: serviceOnly(['pas'], route({ method: 'post', path: '/v1/passkeys/registration/verify', summary: 'verify a WebAuthn registration against its single-use challenge and store the public key (PAS only); recorded as passkey.registered', body: { schema: PasskeyRegistration }, responses: { 201: jsonResponse(RegisteredPasskey, 'registered') }, errors: [400, 404, 415, 503] })),
  passkeyAuthenticationOptions: serviceOnly(['pas'], route({ method: 'post', path: '/v1/passkeys/authentication/options', summary: 'WebAuthn authentication options for a usernameless sign-in (discoverable credentials, user verification required) (PAS only)', responses: { 200: jsonResponse(PasskeyAuthenticationOptions, 'options for navigator.credentials.get') }, errors: [503] })),
  passkeyAuthentication: serviceOnly(['pas'], route({ method: 'post', path: '/v1/passkeys/authentication/verify', summary: 'verify a WebAuthn assertion (single-use challenge, origin, RP ID, user verification, signature, sign count) → the subject and its authentication context (amr hwk mfa); any failure is 400 invalid_grant (PAS only)', body: { schema: PasskeyAssertion }, responses: { 200: jsonResponse(PasskeySubject, 'whose passkey it is') }, errors: [400, 415, 429, 503] })),
};

export const idpPaths = pathsOf(idpRoutes);

export const idpApi = openApiDocument({ title: 'Keyway IdP', description: 'Verifies passwords and RFC 7523 client assertions (for PAS) and whose registered key an SSH public key is (for the releases service’s SFTP front); registers credentials and public keys (for the entitlement service). Every call needs a Keyway client certificate.' }, idpPaths);
