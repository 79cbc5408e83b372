import { idpRoutes, OPERATOR_PROOF_HEADER, type CredentialRegistration, type WebAuthnCredential } from '@keyway/contracts';
import { createHttp, type ClientOptions } from './http.ts';
import { routeCaller } from './route.ts';

export function idpClient(options: ClientOptions) {
  const { call, upsert } = routeCaller(createHttp(options), 'idp');
  const proof = (operatorToken: string | undefined) => (operatorToken ? { headers: { [OPERATOR_PROOF_HEADER]: operatorToken } } : {});
  return {
    /** `otp`: a second factor's code, checked (and spent) with the password */
    verifyPassword: (email: string, password: string, otp?: string) => call(idpRoutes.verifyPassword, { body: { email, password, otp } }),
    /** the login page's second step: a code for an account whose password PAS has verified */
    verifyOtp: (sub: string, otp: string) => call(idpRoutes.verifyOtp, { body: { sub, otp } }),
    /** a new TOTP factor (replacing one needs `otp`): the secret and recovery codes, shown once */
    enrolTotp: (email: string, password: string, otp?: string) => call(idpRoutes.enrolTotp, { body: { email, password, otp } }),
    /** `operatorToken`: the operator's access token, the proof a change to an operator account needs */
    register: (registration: CredentialRegistration, operatorToken?: string) => call(idpRoutes.register, { params: { sub: registration.sub }, body: registration }, proof(operatorToken)),
    remove: (sub: string) => call(idpRoutes.remove, { params: { sub } }),
    /** `created`: the kid was new (201) rather than replaced (200) */
    registerKey: (sub: string, kid: string, jwk: object, operatorToken?: string) =>
      upsert(idpRoutes.registerKey, { params: { sub, kid }, body: { jwk: jwk as Record<string, unknown> } }, proof(operatorToken)),
    removeKey: (sub: string, kid: string) => call(idpRoutes.removeKey, { params: { sub, kid } }),
    /** RFC 7523 client authentication; audience = the values PAS answers to (issuer, token endpoint) */
    verifyAssertion: (assertion: string, audience: string[]) => call(idpRoutes.verifyAssertion, { body: { assertion, audience } }),
    /** the SFTP front (releases): `{ sub, tenant, kid }` when `sub` registered this OpenSSH public key line, else ApiError invalid_grant */
    verifySshKey: (sub: string, publicKeyLine: string) => call(idpRoutes.verifySshKey, { body: { sub, public_key: publicKeyLine } }),
    /** WebAuthn registration options for a person PAS has authenticated, and how many passkeys they hold */
    passkeyRegistrationOptions: (sub: string) => call(idpRoutes.passkeyRegistrationOptions, { body: { sub } }),
    registerPasskey: (sub: string, credential: WebAuthnCredential) => call(idpRoutes.passkeyRegistration, { body: { sub, credential } }),
    passkeyAuthenticationOptions: () => call(idpRoutes.passkeyAuthenticationOptions, {}),
    /** the subject and its authentication context (amr hwk mfa), or ApiError invalid_grant */
    verifyPasskey: (credential: WebAuthnCredential) => call(idpRoutes.passkeyAuthentication, { body: { credential } }),
  };
}
export type IdpClient = ReturnType<typeof idpClient>;
