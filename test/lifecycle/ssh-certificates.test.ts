import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, dpopSigner, pasClient } from '@keyway/clients';
import { loadKeyRing } from '@keyway/pas';
import { publicKeyFromKeyObject, publicKeyLine } from '@keyway/ssh';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { generateDpopKey, lowS } from '@keyway/tokens';
import { PASSWORD, provisionReleaseTenant, rawClient, refusalOf } from '../helpers.ts';

/**
 * Issue 17, the Keyway SSH CA at PAS: an access token is traded for an OpenSSH user certificate valid
 * for minutes (read back with Debian's ssh-keygen, signed by the CA PAS publishes), the releases
 * service's certificate alone gets host certificates, and what is refused is refused with the OAuth
 * shape and recorded.
 */

let suite: Suite;
let dir: string;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL });
  dir = mkdtempSync(join(tmpdir(), 'keyway-ssh-ca-'));
}, 60_000);
afterAll(async () => {
  await suite?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let files = 0;
/** `text` in a fresh file of the test folder: its path */
function file(name: string, text: string): string {
  files += 1;
  const path = join(dir, `${files}-${name}`);
  writeFileSync(path, text);
  return path;
}
const keygen = (...args: string[]) => execFileSync('ssh-keygen', args, { encoding: 'utf8', env: { PATH: process.env.PATH, TZ: 'UTC' } });
/** `ssh-keygen -L` of a certificate line, as the fields it prints */
function inspect(certificate: string) {
  const out = keygen('-L', '-f', file('cert.pub', `${certificate}\n`));
  const field = (name: string) => new RegExp(`^\\s*${name}: ?(.*)$`, 'm').exec(out)?.[1]?.trim();
  const block = (name: string) =>
    (new RegExp(`^\\s*${name}: ?\\n((?:\\s{16}.*\\n?)*)`, 'm').exec(out)?.[1] ?? '')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  return {
    out,
    type: field('Type'),
    signingCa: field('Signing CA'),
    keyId: field('Key ID'),
    serial: field('Serial'),
    valid: field('Valid'),
    principals: block('Principals'),
    critical: field('Critical Options'),
    extensions: field('Extensions'),
  };
}
/** The SHA256 fingerprint ssh-keygen -l prints for a public key line */
const fingerprintOf = (line: string) => keygen('-l', '-f', file('key.pub', `${line}\n`)).split(' ')[1];
const ed25519Line = () => publicKeyLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').privateKey), 'test');
/** ssh-keygen's "Valid: from … to …" in epoch seconds (printed in UTC here) */
const validity = (valid: string | undefined) => {
  const [, from, to] = /^from (\S+) to (\S+)$/.exec(valid ?? '') ?? [];
  return { from: Date.parse(`${from}Z`) / 1000, to: Date.parse(`${to}Z`) / 1000 };
};
const post = (headers: Record<string, string>, body: unknown = { public_key: ed25519Line() }) => rawClient(suite, 'pas').post('/v1/ssh/certificates', body, { headers });

describe('the Keyway SSH CA at PAS', { timeout: 60_000 }, () => {
  it('publishes one CA key, at /.well-known/ssh-ca.pub and in discovery', async () => {
    const response = await rawClient(suite, 'pas').get('/.well-known/ssh-ca.pub', { responseType: 'text' });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.data).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+=* keyway-ssh-ca\n$/);
    const discovery = await suite.pas.discovery();
    expect(discovery.keyway_ssh_ca_public_key).toBe(response.data.trim());
    expect(discovery.keyway_ssh_certificate_endpoint).toBe(`${suite.urls.pas}/v1/ssh/certificates`);
    expect(await suite.pas.sshCaPublicKey()).toBe(response.data.trim());
  });

  it('a logged-in user gets a user certificate ssh-keygen reads: principal the user id, key id keyway:<tenant>:<user>, about 10 minutes, signed by that CA', async () => {
    const person = await provisionReleaseTenant(suite);
    const tokens = await suite.pas.password(person.email, PASSWORD, 'releases');
    const line = ed25519Line();
    const before = Math.floor(Date.now() / 1000);
    const issued = await suite.pas.sshCertificate(tokens.access_token, line);
    expect(issued).toMatchObject({ key_id: `keyway:${person.tenant}:${person.user.id}`, principals: [person.user.id] });

    const cert = inspect(issued.certificate);
    expect(cert.type).toBe('ssh-ed25519-cert-v01@openssh.com user certificate');
    expect(cert.keyId).toBe(`"keyway:${person.tenant}:${person.user.id}"`);
    expect(cert.principals).toEqual([person.user.id]);
    expect(cert.serial).toBe(issued.serial);
    expect(cert.critical).toBe('(none)');
    expect(cert.extensions).toBe('(none)');
    // the signing CA is the one PAS publishes
    const caLine = await suite.pas.sshCaPublicKey();
    expect(cert.signingCa).toBe(`ED25519 ${fingerprintOf(caLine)} (using ssh-ed25519)`);
    // SSH_CERT_TTL_SEC (600) from now, valid from a minute before (clock skew)
    const { from, to } = validity(cert.valid);
    expect(to - from).toBe(660);
    expect(from).toBeGreaterThanOrEqual(before - 61);
    expect(to).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 600);
    expect(new Date(issued.valid_before).getTime() / 1000).toBe(to);

    // a P-256 key is certified too, with a serial of its own
    const p256 = publicKeyLine(publicKeyFromKeyObject(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
    const second = await suite.pas.sshCertificate(tokens.access_token, p256);
    expect(inspect(second.certificate).type).toBe('ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate');
    expect(second.serial).not.toBe(issued.serial);

    // recorded: serial, the certified key's fingerprint, principals, end of validity (never the certificate)
    const { events } = await suite.auditor.events({ tenant: person.tenant, action: 'ssh.certificate_issued' });
    const event = events.find((e) => e.detail?.serial === issued.serial);
    expect(event).toMatchObject({ outcome: 'success', subject: person.user.id, detail: { fingerprint: fingerprintOf(line), principals: person.user.id, valid_before: issued.valid_before } });
    expect(JSON.stringify(events)).not.toContain(issued.certificate.split(' ')[1]);
  });

  it('a DPoP-bound token (a CLI login) needs its proof: refused without it, certified with it', async () => {
    const person = await provisionReleaseTenant(suite);
    const dpop = dpopSigner(await generateDpopKey());
    const bound = await pasClient({ caPem: suite.pki.ca.certPem, baseUrl: suite.urls.pas, dpop }).password(person.email, PASSWORD, 'releases');
    expect(bound.token_type).toBe('DPoP');
    const withoutProof = await post({ authorization: `Bearer ${bound.access_token}` });
    expect(withoutProof.status).toBe(401);
    expect(withoutProof.data.error).toBe('invalid_dpop_proof');
    // another key's proof does not do either
    const stranger = await refusalOf(suite.pas.sshCertificate(bound.access_token, ed25519Line(), dpopSigner(await generateDpopKey())));
    expect(stranger).toBeInstanceOf(ApiError);
    expect((stranger as ApiError).status).toBe(401);
    const issued = await suite.pas.sshCertificate(bound.access_token, ed25519Line(), dpop);
    expect(issued.principals).toEqual([person.user.id]);
  });

  it('no token, a forged, expired or revoked one: 401 invalid_token', async () => {
    const person = await provisionReleaseTenant(suite);
    const tokens = await suite.pas.password(person.email, PASSWORD, 'releases');

    const none = await post({});
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer realm="keyway"/);
    expect((await post({ authorization: 'Bearer not.a.token' })).data).toMatchObject({ error: 'invalid_token' });

    // the same claims, signed by PAS's own key, an hour expired
    const key = (await loadKeyRing(suite.records.pas, suite.kek)).active();
    const claims = decodeJwt(tokens.access_token);
    const expired = lowS(
      await new SignJWT({ ...claims, iat: claims.iat! - 7200, nbf: claims.nbf! - 7200, exp: claims.exp! - 7200 })
        .setProtectedHeader({ ...decodeProtectedHeader(tokens.access_token), kid: key.kid } as { alg: string })
        .sign(key.privateKey),
    );
    const refused = await post({ authorization: `Bearer ${expired}` });
    expect(refused.status).toBe(401);
    expect(refused.data.error).toBe('invalid_token');

    await suite.pas.revoke(tokens.refresh_token, 'refresh_token');
    expect((await post({ authorization: `Bearer ${tokens.access_token}` })).status).toBe(401);
  });

  it('an RSA key, a certificate, garbage or a line whose type lies: 400 invalid_request, recorded as ssh.certificate_refused', async () => {
    const person = await provisionReleaseTenant(suite);
    const { access_token } = await suite.pas.password(person.email, PASSWORD, 'releases');
    const auth = { authorization: `Bearer ${access_token}` };
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const rsaLine = keygen('-i', '-m', 'PKCS8', '-f', file('rsa.pem', rsa.export({ type: 'spki', format: 'pem' }).toString())).trim();
    const ed = ed25519Line();
    const lying = `ecdsa-sha2-nistp256 ${ed.split(' ')[1]}`;
    const issued = await suite.pas.sshCertificate(access_token, ed);
    for (const public_key of [rsaLine, issued.certificate, 'ssh-ed25519 !!!', 'ssh-ed25519 AAAA', lying, 'ssh-ed25519\u0000AAAA']) {
      const response = await post(auth, { public_key });
      expect(response.status, public_key).toBe(400);
      expect(response.data.error).toBe('invalid_request');
    }
    expect((await post(auth, {})).status).toBe(400);
    const { events } = await suite.auditor.events({ tenant: person.tenant, action: 'ssh.certificate_refused' });
    expect(events.length).toBeGreaterThanOrEqual(6);
    expect(events[0]).toMatchObject({ outcome: 'denied', subject: person.user.id, reason: 'invalid_request' });
  });

  it('host certificates: the releases service’s certificate only (403 for another service, 401 without one)', async () => {
    const line = ed25519Line();
    // the releases service's own name (RELEASES_AUDIENCE's host, SSH_HOST_CERT_NAMES by default)
    const body = { public_key: line, hostnames: ['localhost'] };
    const path = '/internal/v1/ssh/host-certificates';
    expect((await rawClient(suite, 'pas', 'pac').post(path, body)).status).toBe(403);
    expect((await rawClient(suite, 'pas', 'operator').post(path, body)).status).toBe(403);
    expect((await rawClient(suite, 'pas').post(path, body)).status).toBe(401);

    const releases = pasClient({ caPem: suite.pki.ca.certPem, clientCert: suite.pki.certs.releases, baseUrl: suite.urls.pas });
    const issued = await releases.hostCertificate(line, body.hostnames);
    const cert = inspect(issued.certificate);
    expect(cert.type).toBe('ssh-ed25519-cert-v01@openssh.com host certificate');
    expect(cert.principals).toEqual(body.hostnames);
    expect(cert.signingCa).toBe(`ED25519 ${fingerprintOf(await suite.pas.sshCaPublicKey())} (using ssh-ed25519)`);
    const { from, to } = validity(cert.valid);
    expect(to - from).toBe(7 * 86_400 + 60);
    const { events } = await suite.auditor.events({ action: 'ssh.host_certificate_issued' });
    expect(events.find((e) => e.detail?.serial === issued.serial)).toMatchObject({ outcome: 'success', clientId: 'releases', detail: { principals: body.hostnames.join(',') } });

    expect((await rawClient(suite, 'pas', 'releases').post(path, { public_key: line, hostnames: ['bad host'] })).status).toBe(400);
    // a stolen releases certificate does not get the CA to vouch for another host
    const foreign = await rawClient(suite, 'pas', 'releases').post(path, { public_key: line, hostnames: ['localhost', 'bank.example'] });
    expect({ status: foreign.status, error: foreign.data.error }).toEqual({ status: 403, error: 'access_denied' });
    expect(foreign.data.error_description).toContain('not bank.example');
    const refusals = await suite.auditor.events({ action: 'ssh.host_certificate_refused' });
    expect(refusals.events.map((e) => ({ outcome: e.outcome, reason: e.reason, clientId: e.clientId }))).toContainEqual({ outcome: 'denied', reason: 'host_name', clientId: 'releases' });
  });
});
