import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idpClient } from '@keyway/clients';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionReleaseTenant, RELEASE_PRODUCT } from '../helpers.ts';
import { type KeywayRunOptions, operatorFiles, startKeywayAt } from './keyway.ts';

/*
 * Issue 17: `keyway ssh login` as a person runs it after `keyway release login` (a DPoP-bound
 * session): a key pair made once, a certificate from PAS's SSH CA, a known_hosts line pinning that CA,
 * and the sftp command to run; checked with Debian's ssh-keygen.
 */

let suite: Suite;
let dir: string;
let files: ReturnType<typeof operatorFiles>;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL });
  dir = mkdtempSync(join(tmpdir(), 'keyway-cli-ssh-'));
  files = operatorFiles(suite, dir);
}, 60_000);
afterAll(async () => {
  await suite?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const keyway = (args: string[], options?: KeywayRunOptions) => startKeywayAt(suite, dir, files, args, options).done;
const keygen = (...args: string[]) => execFileSync('ssh-keygen', args, { encoding: 'utf8' });
const mode = (path: string) => statSync(path).mode & 0o777;
const run = promisify(execFile);

describe('keyway ssh (child process against the real suite)', { timeout: 120_000 }, () => {
  it('login writes the key (0600, made once), a certificate ssh-keygen reads, known_hosts pinning the CA, and the sftp command', async () => {
    const person = await provisionReleaseTenant(suite);
    const configHome = join(dir, `config-${person.tenant}`);
    expect((await keyway(['release', 'login', person.email], { input: `${PASSWORD}\n`, configHome })).code).toBe(0);

    const first = await keyway(['--json', 'ssh', 'login', '--host', 'sftp.keyway.test:2222'], { configHome });
    expect(first.stderr).toContain('made the key pair');
    expect(first.code).toBe(0);
    const sshDir = join(configHome, 'keyway', 'ssh');
    const key = join(sshDir, 'id_ed25519');
    const answer = JSON.parse(first.stdout);
    expect(answer).toMatchObject({ user: person.user.id, host: 'sftp.keyway.test', port: 2222, key, certificate: `${key}-cert.pub`, known_hosts: join(sshDir, 'known_hosts') });
    expect(answer.command).toBe(`sftp -i ${key} -o CertificateFile=${key}-cert.pub -o UserKnownHostsFile=${sshDir}/known_hosts -P 2222 ${person.user.id}@sftp.keyway.test`);

    // the private key only its owner reads, in the format OpenSSH reads (ssh-keygen -y derives its public half)
    expect(mode(key)).toBe(0o600);
    expect(mode(sshDir)).toBe(0o700);
    const publicLine = readFileSync(`${key}.pub`, 'utf8').trim();
    expect(keygen('-y', '-f', key).trim()).toBe(publicLine);

    // the certificate: of that key, for the person, signed by the CA PAS publishes and known_hosts pins
    const listed = keygen('-L', '-f', `${key}-cert.pub`);
    expect(listed).toContain('ssh-ed25519-cert-v01@openssh.com user certificate');
    expect(listed).toContain(`Key ID: "keyway:${person.tenant}:${person.user.id}"`);
    expect(listed).toMatch(new RegExp(`Principals: \\n\\s+${person.user.id}\\n`));
    expect(listed).toContain(`Public key: ED25519-CERT ${keygen('-l', '-f', `${key}.pub`).split(' ')[1]}`);
    const caLine = await suite.pas.sshCaPublicKey();
    const caFile = join(dir, `${person.tenant}-ca.pub`);
    execFileSync('sh', ['-c', `printf '%s\\n' "$1" > "$2"`, 'sh', caLine, caFile]);
    expect(listed).toContain(`Signing CA: ED25519 ${keygen('-l', '-f', caFile).split(' ')[1]}`);
    const caKey = caLine.split(' ').slice(0, 2).join(' ');
    expect(readFileSync(join(sshDir, 'known_hosts'), 'utf8')).toBe(`@cert-authority [sftp.keyway.test]:2222 ${caKey}\n`);

    // again: the same key, a new certificate
    const second = await keyway(['--json', 'ssh', 'login', '--host', 'sftp.keyway.test:2222'], { configHome });
    expect(second.code).toBe(0);
    expect(second.stderr).not.toContain('made the key pair');
    expect(readFileSync(`${key}.pub`, 'utf8').trim()).toBe(publicLine);
    expect(JSON.parse(second.stdout).serial).not.toBe(answer.serial);

    // a key of one's own, kept elsewhere, on port 22: known_hosts names the bare host
    const own = join(dir, `${person.tenant}-own`);
    keygen('-q', '-t', 'ecdsa', '-b', '256', '-N', '', '-f', own);
    const other = join(dir, `${person.tenant}-dir`);
    const third = await keyway(['ssh', 'login', '--key', own, '--dir', other, '--host', 'sftp.keyway.test'], { configHome });
    expect(third.code).toBe(0);
    expect(third.stdout).toContain(`sftp -i ${own} -o CertificateFile=${own}-cert.pub -o UserKnownHostsFile=${other}/known_hosts -P 22 ${person.user.id}@sftp.keyway.test`);
    expect(keygen('-L', '-f', `${own}-cert.pub`)).toContain('ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate');
    expect(readFileSync(join(other, 'known_hosts'), 'utf8')).toBe(`@cert-authority sftp.keyway.test ${caKey}\n`);

    // the line for one's own ~/.ssh/known_hosts, without a login
    const printed = await keyway(['ssh', 'known-hosts', '--host', 'sftp.keyway.test']);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toBe(`@cert-authority sftp.keyway.test ${caKey}\n`);
  });

  it('the sftp line ssh login prints takes the person into the releases tree: host pinned by the CA, no prompt, no password', async () => {
    const person = await provisionReleaseTenant(suite);
    const configHome = join(dir, `config-sftp-${person.tenant}`);
    expect((await keyway(['release', 'login', person.email], { input: `${PASSWORD}\n`, configHome })).code).toBe(0);
    const login = await keyway(['--json', 'ssh', 'login', '--host', `localhost:${suite.releasesSftpPort()}`], { configHome });
    expect(login.code).toBe(0);
    const { command } = JSON.parse(login.stdout) as { command: string };
    const batch = join(configHome, 'batch');
    writeFileSync(batch, 'ls /\n');
    // what a person would type, in batch mode: any prompt (an unknown host, a password) fails it instead
    const strict = `sftp -4 -b ${batch} -o BatchMode=yes -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null -o IdentityAgent=none -o PasswordAuthentication=no `;
    // asynchronously: the suite's services answer from this process
    const { stdout: listed } = await run('sh', ['-c', command.replace(/^sftp /, strict)], { encoding: 'utf8', timeout: 60_000 });
    expect(listed.split('\n').map((line) => line.trim())).toContain(`/${RELEASE_PRODUCT.product}`);
  });

  it('refuses plainly: no login (exit 5), a key that is not there or not a key (exit 2), a bad --host (exit 2)', async () => {
    const nobody = await keyway(['ssh', 'login', '--dir', join(dir, 'nobody')]);
    // nothing made before the login is known
    expect(existsSync(join(dir, 'nobody'))).toBe(false);
    expect(nobody.code).toBe(5);
    expect(nobody.stderr).toMatch(/no credentials: run `keyway release login`/);

    // (the key is looked at once there are credentials: any token will do, it is never sent)
    const token = { env: { KEYWAY_TOKEN: 'not-sent' } };
    const missing = await keyway(['ssh', 'login', '--key', join(dir, 'no-such-key')], token);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no-such-key: no such file/);

    const notKey = join(dir, 'ca.crt');
    const refused = await keyway(['ssh', 'login', '--key', notKey], token);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`ssh-keygen -y -f ${notKey}`);

    const host = await keyway(['ssh', 'known-hosts', '--host', 'bad host:x']);
    expect(host.code).toBe(2);
    expect(host.stderr).toContain('--host');
  });

  it('user key add registers an ssh-keygen public key (.pub) as its JWK: the IdP then knows it as the user’s for SFTP; an RSA one is refused by name (exit 2)', async () => {
    const person = await provisionReleaseTenant(suite);
    const asOperator = (args: string[]) => keyway(['--cert', files.cert, '--key', files.key, ...args]);
    const releases = idpClient({ baseUrl: suite.urls.idp, caPem: suite.pki.ca.certPem, clientCert: suite.pki.certs.releases });
    for (const [type, kid] of [
      ['ed25519', 'laptop'],
      ['ecdsa', 'ci'],
    ] as const) {
      const key = join(dir, `${kid}-${person.tenant}`);
      keygen('-q', '-t', type, ...(type === 'ecdsa' ? ['-b', '256'] : []), '-N', '', '-C', `${kid}@example`, '-f', key);
      const added = await asOperator(['--json', 'user', 'key', 'add', person.tenant, person.email, kid, `${key}.pub`]);
      expect(added.stderr).toBe('');
      expect(added.code).toBe(0);
      expect(JSON.parse(added.stdout)).toEqual({ sub: person.user.id, kid, alg: type === 'ecdsa' ? 'ES256' : 'EdDSA' });
      expect(await releases.verifySshKey(person.user.id, readFileSync(`${key}.pub`, 'utf8'))).toEqual({ sub: person.user.id, tenant: person.tenant, kid });
    }
    const rsa = join(dir, `rsa-${person.tenant}`);
    keygen('-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', rsa);
    const refused = await asOperator(['user', 'key', 'add', person.tenant, person.email, 'rsa', `${rsa}.pub`]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('unsupported key type "ssh-rsa"');
  });
});
