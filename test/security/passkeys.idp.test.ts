import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, idpClient } from '@keyway/clients';
import type { WebAuthnCredential } from '@keyway/contracts';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant, refusalOf } from '../helpers.ts';

// Issue 14: the IdP's passkey routes as PAS calls them, with a software authenticator made here
// (WebAuthn §6.1 authenticator data, §6.5 attestation "none", §6.3.3 assertion signature), so that
// every refusal can be produced on purpose: an assertion presented again, another origin, no user
// verification, an unknown credential, a sign count going back (a cloned authenticator), a
// registration with someone else's challenge. Each is a 400 invalid_grant, never a 500.

let suite: Suite;
let idp: ReturnType<typeof idpClient>;

beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL });
  idp = idpClient({ baseUrl: suite.urls.idp, caPem: suite.pki.ca.certPem, clientCert: suite.pki.certs.pas });
}, 120_000);
afterAll(async () => {
  await suite?.close();
});

// --- a minimal CBOR encoder (RFC 8949): unsigned and negative integers, byte and text strings, maps
const head = (major: number, n: number): Buffer => {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 256) return Buffer.from([(major << 5) | 24, n]);
  if (n < 65536) return Buffer.from([(major << 5) | 25, n >> 8, n & 255]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
};
type Cbor = number | string | Buffer | Map<number | string, Cbor>;
function cbor(value: Cbor): Buffer {
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') return Buffer.concat([head(3, Buffer.byteLength(value)), Buffer.from(value)]);
  if (Buffer.isBuffer(value)) return Buffer.concat([head(2, value.length), value]);
  return Buffer.concat([head(5, value.size), ...[...value].flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

const b64u = (b: Buffer) => b.toString('base64url');
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest();
const UP = 0x01;
const UV = 0x04;
const AT = 0x40;

/** A platform authenticator in software: one P-256 credential, its sign count, user verification on by default. */
function softwareAuthenticator() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  // RFC 9053 §7.1.1: kty 2 (EC2), alg -7 (ES256), crv 1 (P-256), x, y
  const coseKey = cbor(
    new Map<number, Cbor>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(jwk.x as string, 'base64url')],
      [-3, Buffer.from(jwk.y as string, 'base64url')],
    ]),
  );
  const id = randomBytes(32);
  let signCount = 0;
  const authData = (rpId: string, flags: number, count: number, attested?: Buffer) => {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(count);
    return Buffer.concat([sha256(rpId), Buffer.from([flags]), counter, ...(attested ? [attested] : [])]);
  };
  const clientData = (type: string, challenge: string, origin: string) => Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  return {
    id: b64u(id),
    key: privateKey as KeyObject,
    /** navigator.credentials.create(): attestation "none" */
    create(options: { challenge: string }, origin: string, rpId = new URL(origin).hostname): WebAuthnCredential {
      const idLength = Buffer.alloc(2);
      idLength.writeUInt16BE(id.length);
      const attested = Buffer.concat([Buffer.alloc(16), idLength, id, coseKey]);
      const attestationObject = cbor(
        new Map<string, Cbor>([
          ['fmt', 'none'],
          ['attStmt', new Map()],
          ['authData', authData(rpId, UP | UV | AT, 0, attested)],
        ]),
      );
      return {
        id: b64u(id),
        rawId: b64u(id),
        type: 'public-key',
        clientExtensionResults: {},
        response: { clientDataJSON: b64u(clientData('webauthn.create', options.challenge, origin)), attestationObject: b64u(attestationObject), transports: ['internal'] },
      };
    },
    /** navigator.credentials.get(): the sign count moves on unless `count` says otherwise */
    get(options: { challenge: string }, origin: string, opts: { flags?: number; count?: number; userHandle?: string } = {}): WebAuthnCredential {
      signCount = opts.count ?? signCount + 1;
      const data = authData(new URL(origin).hostname, opts.flags ?? UP | UV, signCount);
      const clientDataJSON = clientData('webauthn.get', options.challenge, origin);
      const signature = sign('sha256', Buffer.concat([data, sha256(clientDataJSON)]), privateKey);
      return {
        id: b64u(id),
        rawId: b64u(id),
        type: 'public-key',
        clientExtensionResults: {},
        response: { clientDataJSON: b64u(clientDataJSON), authenticatorData: b64u(data), signature: b64u(signature), ...(opts.userHandle && { userHandle: opts.userHandle }) },
      };
    },
  };
}

const expectInvalidGrant = async (promise: Promise<unknown>) => {
  const err = await refusalOf(promise);
  expect(err).toBeInstanceOf(ApiError);
  expect(err).toMatchObject({ status: 400, code: 'invalid_grant' });
};

describe('the IdP’s passkey routes (issue 14)', { timeout: 30_000 }, () => {
  let person: Awaited<ReturnType<typeof provisionTenant>>;
  let authenticator: ReturnType<typeof softwareAuthenticator>;

  it('registers a passkey right after a password sign-in, with its own challenge only: not with one issued for someone else, not twice', async () => {
    person = await provisionTenant(suite);
    const other = await provisionTenant(suite);
    authenticator = softwareAuthenticator();
    const origin = suite.urls.pas;

    // PAS's certificate alone enrols nobody: only right after the IdP verified the person's password
    await expectInvalidGrant(idp.passkeyRegistrationOptions(person.user.id));
    await idp.verifyPassword(person.email, PASSWORD);
    await idp.verifyPassword(other.email, PASSWORD);
    const start = await idp.passkeyRegistrationOptions(person.user.id);
    expect(start.registered).toBe(0);
    expect(start.options).toMatchObject({ rp: { id: 'localhost' }, authenticatorSelection: { residentKey: 'required', userVerification: 'required' } });

    // the challenge was issued for `person`: it registers nothing for `other`, and is spent
    await expectInvalidGrant(idp.registerPasskey(other.user.id, authenticator.create(start.options, origin)));
    await expectInvalidGrant(idp.registerPasskey(person.user.id, authenticator.create(start.options, origin)));

    // another origin (a phishing site's) does not register either
    const phished = await idp.passkeyRegistrationOptions(person.user.id);
    await expectInvalidGrant(idp.registerPasskey(person.user.id, authenticator.create(phished.options, 'https://login.example-phish.test', 'localhost')));

    const fresh = await idp.passkeyRegistrationOptions(person.user.id);
    expect(await idp.registerPasskey(person.user.id, authenticator.create(fresh.options, origin))).toEqual({ sub: person.user.id, credential_id: authenticator.id });
    const again = await idp.passkeyRegistrationOptions(person.user.id);
    expect(again.registered).toBe(1);
    expect(again.options.excludeCredentials).toEqual([expect.objectContaining({ id: authenticator.id })]);
    // the same credential twice: refused (400), not a 500
    const twice = await refusalOf(idp.registerPasskey(person.user.id, authenticator.create(again.options, origin)));
    expect(twice).toMatchObject({ status: 400 });
  });

  it('signs in with the passkey: the subject and amr hwk + mfa', async () => {
    const { options } = await idp.passkeyAuthenticationOptions();
    expect(options).toMatchObject({ rpId: 'localhost', userVerification: 'required' });
    expect(options.allowCredentials ?? []).toEqual([]);
    const answer = await idp.verifyPasskey(authenticator.get(options, suite.urls.pas));
    expect(answer).toMatchObject({ sub: person.user.id, tenant: person.tenant, email: person.email, authentication: { amr: ['hwk', 'mfa'] } });
    expect(Math.abs(answer.authentication.auth_time - Date.now() / 1000)).toBeLessThan(30);
  });

  it('refuses an assertion presented again (its challenge is spent), even right after it succeeded', async () => {
    const { options } = await idp.passkeyAuthenticationOptions();
    const assertion = authenticator.get(options, suite.urls.pas);
    await idp.verifyPasskey(assertion);
    await expectInvalidGrant(idp.verifyPasskey(assertion));
  });

  it('refuses another origin, no user verification, a foreign user handle, an unknown credential and a sign count going back', async () => {
    const origin = suite.urls.pas;
    const options = async () => (await idp.passkeyAuthenticationOptions()).options;
    // a phishing page relaying our challenge: the browser names its own origin in clientDataJSON
    const relayed = await options();
    await expectInvalidGrant(idp.verifyPasskey(authenticator.get(relayed, 'https://localhost.example-phish.test')));
    // ... and the challenge it burnt is gone for the genuine page too
    await expectInvalidGrant(idp.verifyPasskey(authenticator.get(relayed, origin)));
    // user presence without verification is one factor, not a passkey sign-in
    await expectInvalidGrant(idp.verifyPasskey(authenticator.get(await options(), origin, { flags: UP })));
    await expectInvalidGrant(idp.verifyPasskey(authenticator.get(await options(), origin, { userHandle: b64u(randomBytes(32)) })));
    await expectInvalidGrant(idp.verifyPasskey(softwareAuthenticator().get(await options(), origin)));
    // WebAuthn §6.1.1: a count not above the stored one means a clone signed in meanwhile
    await expectInvalidGrant(idp.verifyPasskey(authenticator.get(await options(), origin, { count: 1 })));
    // a garbled signature
    const forged = authenticator.get(await options(), origin);
    await expectInvalidGrant(idp.verifyPasskey({ ...forged, response: { ...forged.response, signature: b64u(randomBytes(70)) } }));
    // the genuine authenticator still signs in
    expect(await idp.verifyPasskey(authenticator.get(await options(), origin, { count: 100 }))).toMatchObject({ sub: person.user.id });
  });

  it('answers PAS only: the entitlement service’s certificate is refused', async () => {
    const entitlement = idpClient({ baseUrl: suite.urls.idp, caPem: suite.pki.ca.certPem, clientCert: suite.pki.certs.entitlement });
    expect(await refusalOf(entitlement.passkeyAuthenticationOptions())).toMatchObject({ status: 403 });
  });

  it('forgets the passkeys of a person whose credentials are removed', async () => {
    await suite.operator.deleteUser(person.tenant, person.user.id);
    const { options } = await idp.passkeyAuthenticationOptions();
    await expectInvalidGrant(idp.verifyPasskey(authenticator.get(options, suite.urls.pas, { count: 200 })));
    const rows = await suite.audit.query('SELECT 1 FROM keyway_idp.passkeys WHERE sub = $1', [person.user.id]);
    expect(rows).toEqual([]);
  });
});
