import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idpClient } from '@keyway/clients';
import { parsePublicKeyLine, publicKeyFromKeyObject, publicKeyLine } from '@keyway/ssh';
import { PKI_NAMES, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { apiRefusal, provisionTenant, rawClient } from '../helpers.ts';

// Issue 17: the SFTP front (releases) authenticates a user by an SSH public key they registered as a
// private_key_jwt key (a JWK, through the entitlement admin API); it verifies the SSH signature and asks
// the IdP whose key it is. A key the user does not hold, an unknown user and a removed one are one answer.

const FAILURES = 6;
const WINDOW_SEC = 4;
let suite: Suite;
let dir: string;
beforeAll(async () => {
  // a short window, so the aggregated record of refusals is written while the test waits
  suite = await startSuite({ redisUrl: REDIS_URL, limits: { idp: { failuresPerAccount: FAILURES, windowSec: WINDOW_SEC } } });
  dir = mkdtempSync(join(tmpdir(), 'keyway-ssh-keys-'));
}, 120_000);
afterAll(async () => {
  await suite?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const idpAs = (caller: string) => idpClient({ baseUrl: suite.urls.idp, caPem: suite.pki.ca.certPem, clientCert: suite.pki.certs[caller] });
const releases = () => idpAs('releases');
const verifyAs = (caller: string, sub: string, public_key: string) => rawClient(suite, 'idp', caller).post('/v1/credentials/ssh-key/verify', { sub, public_key });
const sshLine = (key: KeyObject) => publicKeyLine(publicKeyFromKeyObject(key), 'person@laptop');
const jwkOf = (key: KeyObject) => key.export({ format: 'jwk' });
const REFUSAL = { error: 'invalid_grant', error_description: 'the public key is not registered for the user' };

/** A fresh tenant whose user registered an Ed25519 key (kid "laptop") and a P-256 key (kid "ci") through the admin API. */
async function userWithKeys() {
  const t = await provisionTenant(suite);
  const edPair = generateKeyPairSync('ed25519');
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  await suite.operator.registerKey(t.tenant, t.user.id, 'laptop', jwkOf(edPair.publicKey));
  await suite.operator.registerKey(t.tenant, t.user.id, 'ci', jwkOf(ec));
  return { ...t, ed: edPair.publicKey, edPrivate: edPair.privateKey, ec };
}

describe('POST /v1/credentials/ssh-key/verify (issue 17)', () => {
  it('answers the user’s tenant and the kid for a registered Ed25519 or P-256 key, given as its OpenSSH line', async () => {
    const u = await userWithKeys();
    expect(await releases().verifySshKey(u.user.id, sshLine(u.ed))).toEqual({ sub: u.user.id, tenant: u.tenant, kid: 'laptop' });
    expect(await releases().verifySshKey(u.user.id, sshLine(u.ec))).toEqual({ sub: u.user.id, tenant: u.tenant, kid: 'ci' });
  });

  it('reads the key ssh-keygen wrote, comment and all', async () => {
    const u = await provisionTenant(suite);
    const path = join(dir, `id_ed25519-${u.user.id}`);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'person@laptop', '-f', path]);
    const line = readFileSync(`${path}.pub`, 'utf8');
    // registered as the CLI does it (keyway user key add … id_ed25519.pub): the JWK of the line's key
    await suite.operator.registerKey(u.tenant, u.user.id, 'keygen', jwkOf(parsePublicKeyLine(line).key));
    expect(await releases().verifySshKey(u.user.id, line)).toEqual({ sub: u.user.id, tenant: u.tenant, kid: 'keygen' });
  });

  it('one refusal, 400 invalid_grant, for another user’s key, an unregistered key, an unknown user, a removed key and a removed user', async () => {
    const u = await userWithKeys();
    const other = await userWithKeys();
    const stranger = sshLine(generateKeyPairSync('ed25519').publicKey);
    const answers = [await verifyAs('releases', other.user.id, sshLine(u.ed)), await verifyAs('releases', u.user.id, stranger), await verifyAs('releases', `u-nobody-${u.tenant}`, sshLine(u.ed))];
    await suite.operator.removeKey(u.tenant, u.user.id, 'ci');
    answers.push(await verifyAs('releases', u.user.id, sshLine(u.ec)));
    // the user's other key still works until the user is removed
    expect((await verifyAs('releases', u.user.id, sshLine(u.ed))).status).toBe(200);
    await suite.operator.deleteUser(u.tenant, u.user.id);
    answers.push(await verifyAs('releases', u.user.id, sshLine(u.ed)));
    for (const answer of answers) {
      expect(answer.status).toBe(400);
      expect(answer.data).toEqual(REFUSAL);
    }
    expect(await apiRefusal(releases().verifySshKey(other.user.id, sshLine(u.ed)))).toEqual({ status: 400, code: 'invalid_grant' });
  });

  it('answers only the releases certificate: any other is 403 access_denied, none is 401', async () => {
    const u = await userWithKeys();
    for (const caller of PKI_NAMES.filter((name) => name !== 'releases')) {
      const answer = await verifyAs(caller, u.user.id, sshLine(u.ed));
      expect(answer.status, caller).toBe(403);
      expect(answer.data).toMatchObject({ error: 'access_denied' });
    }
    const anonymous = await rawClient(suite, 'idp').post('/v1/credentials/ssh-key/verify', { sub: u.user.id, public_key: sshLine(u.ed) });
    expect(anonymous.status).toBe(401);
  });

  it('a line that is no ssh-ed25519 or ecdsa-sha2-nistp256 key is 400 invalid_request, never counted against the user', async () => {
    const u = await userWithKeys();
    const ed = publicKeyFromKeyObject(u.ed);
    const rsaPath = join(dir, `id_rsa-${u.user.id}`);
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', rsaPath]);
    const malformed = [
      'not a key',
      'ssh-ed25519',
      'ssh-ed25519 AAAA',
      `ssh-ed25519 ${ed.blob.subarray(0, 20).toString('base64')}`,
      // the type in front must be the type inside
      `ecdsa-sha2-nistp256 ${ed.blob.toString('base64')}`,
      readFileSync(`${rsaPath}.pub`, 'utf8'),
      `ssh-ed25519 ${ed.blob.toString('base64')}\nssh-ed25519 ${ed.blob.toString('base64')}`,
      '',
    ];
    for (const line of malformed) {
      const answer = await verifyAs('releases', u.user.id, line);
      expect(answer.status, line).toBe(400);
      expect(answer.data, line).toMatchObject({ error: 'invalid_request' });
    }
    expect((await verifyAs('releases', u.user.id, 'x'.repeat(8193))).data).toMatchObject({ error: 'invalid_request' });
    expect((await verifyAs('releases', '', sshLine(u.ed))).data).toMatchObject({ error: 'invalid_request' });
    // none of them counted: the user's key still verifies after more than FAILURES of them
    expect((await verifyAs('releases', u.user.id, sshLine(u.ed))).status).toBe(200);
  });

  it(`throttles a user after ${FAILURES} refusals (429) and records them on the IdP’s trail as one aggregated event`, async () => {
    const u = await userWithKeys();
    const statuses: number[] = [];
    for (let i = 0; i < FAILURES + 2; i++) statuses.push((await verifyAs('releases', u.user.id, sshLine(generateKeyPairSync('ed25519').publicKey))).status);
    expect(statuses).toEqual([...Array(FAILURES).fill(400), 429, 429]);
    expect((await verifyAs('releases', u.user.id, sshLine(u.ed))).status).toBe(429);
    // the SSH check's own count: the agent's private_key_jwt logins with the same key still pass
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ iss: u.user.id, sub: u.user.id, aud: suite.urls.pas, jti: randomUUID(), iat: now, exp: now + 60 })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'laptop' })
      .sign(u.edPrivate);
    expect(await idpAs('pas').verifyAssertion(assertion, [suite.urls.pas])).toMatchObject({ sub: u.user.id, tenant: u.tenant });
    let recorded: Awaited<ReturnType<Suite['auditor']['events']>>['events'] = [];
    const total = () => recorded.reduce((sum, e) => sum + Number(e.detail?.count), 0);
    for (let i = 0; i < WINDOW_SEC * 12 && total() < FAILURES + 3; i++) {
      await sleep(250);
      recorded = (await suite.auditor.events({ stream: 'idp', action: 'credentials.verification_failed', limit: 500 })).events.filter((e) => e.detail?.username === `ssh:${u.user.id}`);
    }
    expect(total()).toBe(FAILURES + 3);
    const reasons = recorded.map((e) => e.detail?.reasons).join(',');
    expect(reasons).toContain('unregistered_ssh_key=');
    expect(reasons).toContain('too_many_requests=');
  }, 60_000);
});
