import { pasRoutes, type TokenRequest } from '@keyway/contracts';
import type { DpopSigner } from './dpop.ts';
import { createHttp, type ClientOptions } from './http.ts';
import { routeCaller } from './route.ts';

export function pasClient(options: ClientOptions) {
  const http = createHttp(options);
  const { call } = routeCaller(http, 'pas', options.dpop);
  const token = (body: TokenRequest, headers: Record<string, string> = {}) => call(pasRoutes.token, { body }, { headers });
  return {
    /**
     * `clientAddress`: the address of the person signing in, when the caller signs them in on their
     * behalf (the console); PAS throttles logins by it, and believes it only from the entitlement service.
     */
    password: (username: string, password: string, scope?: string, clientAddress?: string, otp?: string) =>
      token({ grant_type: 'password', username, password, scope, otp }, clientAddress ? { 'x-keyway-client-address': clientAddress } : {}),
    refresh: (refreshToken: string, scope?: string) => token({ grant_type: 'refresh_token', refresh_token: refreshToken, scope }),
    clientCredentials: (clientAssertion: string, scope?: string) =>
      token({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: clientAssertion,
        scope,
      }),
    /** RFC 7009: 200 whether or not the token was valid */
    revoke: (token: string, hint?: 'refresh_token' | 'access_token') => call(pasRoutes.revoke, { body: { token, token_type_hint: hint } }),
    /** RFC 7662; the caller authenticates with its client certificate */
    introspect: (token: string, hint?: 'refresh_token' | 'access_token') => call(pasRoutes.introspect, { body: { token, token_type_hint: hint } }),
    /** Keyway extension: enrol a TOTP factor (replacing one needs `otp`); the secret and recovery codes are answered once */
    enrolTotp: (username: string, password: string, otp?: string) => call(pasRoutes.enrolTotp, { body: { username, password, otp } }),
    discovery: () => call(pasRoutes.discovery),
    jwks: () => call(pasRoutes.jwks),
    /** the SSH CA's public key line (GET /.well-known/ssh-ca.pub) */
    sshCaPublicKey: async () => (await call(pasRoutes.sshCaPublicKey, undefined, { responseType: 'text' })).trim(),
    /**
     * A short-lived SSH user certificate for `publicKeyLine`, paid with an access token; a DPoP-bound
     * token goes with `dpop`, the key it is bound to (RFC 9449 §7.1: `Authorization: DPoP`, a proof naming the token).
     */
    sshCertificate: (accessToken: string, publicKeyLine: string, dpop?: DpopSigner) =>
      dpop
        ? routeCaller(http, 'pas', dpop).call(pasRoutes.sshCertificate, { body: { public_key: publicKeyLine } }, { headers: { authorization: `DPoP ${accessToken}` }, dpopCredential: accessToken })
        : call(pasRoutes.sshCertificate, { body: { public_key: publicKeyLine } }, { accessToken }),
    /** the releases service (mTLS): a host certificate for its SFTP host key, for `hostnames` */
    hostCertificate: (publicKeyLine: string, hostnames: string[]) => call(pasRoutes.hostCertificate, { body: { public_key: publicKeyLine, hostnames } }),
    /** operator (mTLS): the signing keys, without key material */
    signingKeys: () => call(pasRoutes.signingKeys),
    /** operator (mTLS): one rotation step; 409 with Retry-After while the next key is too freshly published */
    rotateSigningKeys: () => call(pasRoutes.rotateSigningKeys),
  };
}
export type PasClient = ReturnType<typeof pasClient>;
