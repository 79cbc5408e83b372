import { execFile } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileState } from '@keyway/contracts';
import { publicKeyFromKeyObject, publicKeyLine, signCertificate } from '@keyway/ssh';
import { REDIS_URL, sftpBatchArgs, sshKeyFiles, startSuite, type Suite } from '@keyway/testkit';
import { EICAR, startClamdServer, type ClamdServer } from '@keyway/testkit/servers';
import { PASSWORD, provisionReleaseTenant, RELEASE_PRODUCT } from '../helpers.ts';

/*
 * Issue 17: the releases tree over SFTP, driven by Debian's OpenSSH `sftp` as a customer, a partner
 * and a publisher would: Keyway user certificates from PAS's CA (or a key registered at the IdP), the
 * host pinned by a @cert-authority line (no trust on first use), the same rights and audit as HTTPS.
 */

let suite: Suite;
let clamd: ClamdServer;
let dir: string;
/** a second user CA the releases service trusts (SFTP_TRUSTED_USER_CA_FILE): it signs the certificates PAS would not (expired ones) */
let extraCa: KeyObject;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keyway-sftp-'));
  extraCa = generateKeyPairSync('ed25519').privateKey;
  const caFile = join(dir, 'trusted-user-ca.pub');
  writeFileSync(caFile, `# rotated in\n${publicKeyLine(publicKeyFromKeyObject(extraCa))}\n`);
  clamd = await startClamdServer();
  suite = await startSuite({ redisUrl: REDIS_URL, releases: { clamdAddress: clamd.address, clamdStreamMaxLength: '64M', trustedUserCaFile: caFile, sftpReauthorizeSec: 1 } });
}, 120_000);
afterAll(async () => {
  await suite?.close();
  await clamd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const { product } = RELEASE_PRODUCT;
type Person = Awaited<ReturnType<typeof provisionReleaseTenant>>;

/** A certificate from PAS's CA for the person (`keyway ssh login` does this), beside the key. */
async function certify(person: Person, files: ReturnType<typeof sshKeyFiles>) {
  const token = (await suite.pas.password(person.email, PASSWORD, 'releases')).access_token;
  const issued = await suite.pas.sshCertificate(token, files.line);
  writeFileSync(`${files.key}-cert.pub`, `${issued.certificate}\n`);
  return issued;
}

/** known_hosts pinning PAS's CA for the server's name (what `keyway ssh known-hosts` writes). */
async function knownHosts(home: string) {
  const path = join(home, 'known_hosts');
  writeFileSync(path, `@cert-authority localhost ${await suite.pas.sshCaPublicKey()}\n`);
  return path;
}

interface SftpRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs Debian's `sftp` in batch mode as `user`, with only the key (and its certificate when there is one); no password, no TOFU. */
async function sftp(user: string, files: { home: string; key: string }, commands: string[], options: { certificate?: boolean; limitKbit?: number } = {}): Promise<SftpRun> {
  const batch = join(files.home, 'batch');
  writeFileSync(batch, `${commands.join('\n')}\n`);
  const args = sftpBatchArgs({
    port: suite.releasesSftpPort(),
    user,
    key: files.key,
    certificate: options.certificate !== false,
    knownHosts: await knownHosts(files.home),
    batch,
    limitKbit: options.limitKbit,
  });
  return new Promise((resolve) => {
    execFile('sftp', args, { cwd: files.home, timeout: 60_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function waitForFile(person: Person, version: string, name: string, until: FileState): Promise<void> {
  const token = (await suite.pas.password(person.email, PASSWORD, 'releases')).access_token;
  for (let deadline = Date.now() + 30_000; ; await sleep(200)) {
    const file = (await suite.releases.getVersion(product, version, { accessToken: token })).files.find((f) => f.name === name);
    if (file?.state === until) return;
    if (Date.now() > deadline) throw new Error(`${name} is ${file?.state} after 30 s, not ${until}`);
  }
}

const auditEvents = async (tenant: string, action: string) => (await suite.auditor.events({ tenant, action, order: 'oldest' })).events;

describe('issue 17: SFTP to the distribution center with Keyway SSH certificates', { timeout: 180_000 }, () => {
  let publisher: Person;
  let publisherKeys: ReturnType<typeof sshKeyFiles>;
  const version = '3.1.0';
  const name = 'agent-3.1.0.bin';
  const bytes = randomBytes(3 * 1024 * 1024 + 123);

  beforeAll(async () => {
    publisher = await provisionReleaseTenant(suite, { roles: ['publisher'], products: [product] });
    publisherKeys = sshKeyFiles(dir, 'publisher');
  });

  it('a publisher drafts a version, puts a file, and publishes it by renaming the draft once clamd passed it', async () => {
    writeFileSync(join(publisherKeys.home, name), bytes);
    await certify(publisher, publisherKeys);
    const put = await sftp(publisher.user.id, publisherKeys, [`mkdir ${product}/drafts/${version}`, `put ${name} ${product}/drafts/${version}/`, `ls -l ${product}/drafts/${version}`]);
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    expect(put.stdout).toContain(name);
    await waitForFile(publisher, version, name, 'clean');

    await certify(publisher, publisherKeys);
    const publish = await sftp(publisher.user.id, publisherKeys, [`rename ${product}/drafts/${version} ${product}/${version}`, `ls ${product}`]);
    expect(publish.code).toBe(0);
    expect(publish.stdout).toMatch(new RegExp(`${product}/${version.replaceAll('.', '\\.')}`));
    const events = await auditEvents(publisher.tenant, 'release.published');
    expect(events.map((e) => ({ outcome: e.outcome, transport: e.detail?.transport }))).toEqual([{ outcome: 'success', transport: 'sftp' }]);
  });

  it('a customer downloads it, and resumes a cut download with reget; both are on the download report', async () => {
    const customer = await provisionReleaseTenant(suite, { roles: ['downloader'] });
    const files = sshKeyFiles(dir, 'customer');
    await certify(customer, files);
    const whole = await sftp(customer.user.id, files, [`get ${product}/${version}/${name} whole.bin`]);
    expect(whole.stderr).toBe('');
    expect(whole.code).toBe(0);
    expect(sha256(readFileSync(join(files.home, 'whole.bin')))).toBe(sha256(bytes));

    // a download cut after 1 MiB: reget asks for the rest only
    writeFileSync(join(files.home, 'cut.bin'), bytes.subarray(0, 1024 * 1024));
    const resumed = await sftp(customer.user.id, files, [`reget ${product}/${version}/${name} cut.bin`]);
    expect(resumed.code).toBe(0);
    expect(statSync(join(files.home, 'cut.bin')).size).toBe(bytes.length);
    expect(sha256(readFileSync(join(files.home, 'cut.bin')))).toBe(sha256(bytes));

    const report = await suite.releases.downloadReport({ tenant: customer.tenant });
    expect(report.downloads.map((d) => ({ subject: d.subject, file: d.file, version: d.version }))).toEqual([
      { subject: customer.user.id, file: name, version },
      { subject: customer.user.id, file: name, version },
    ]);
    const logins = await auditEvents(customer.tenant, 'sftp.login');
    expect(logins.map((e) => e.detail?.auth)).toEqual(['certificate', 'certificate']);
  });

  it('a contract change holds mid-download: the open file is authorized again and its next read refused', async () => {
    const customer = await provisionReleaseTenant(suite, { roles: ['downloader'] });
    const files = sshKeyFiles(dir, 'mid-download');
    await certify(customer, files);
    // about 100 KB/s: the 3 MiB take half a minute, time enough to change the contract during it
    const started = Date.now();
    const downloading = sftp(customer.user.id, files, [`get ${product}/${version}/${name} slow.bin`], { limitKbit: 800 });
    await sleep(3000);
    await suite.operator.putTier(customer.tier, { name: 'From 9.0', feeds: [], products: [{ product, versions: '>=9.0.0' }] });
    const cut = await downloading;
    expect(cut.code).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(statSync(join(files.home, 'slow.bin')).size).toBeLessThan(bytes.length);
    const denials = await auditEvents(customer.tenant, 'authorization.denied');
    expect(denials.map((e) => ({ reason: e.reason, transport: e.detail?.transport }))).toEqual([{ reason: 'version_not_entitled', transport: 'sftp' }]);
  });

  it('a customer is refused outside their tree: a version outside the contract, another product, writing, removing', async () => {
    const customer = await provisionReleaseTenant(suite, { tierProducts: [{ product, versions: '<3.0.0' }] });
    const files = sshKeyFiles(dir, 'narrow');
    await certify(customer, files);
    const listing = await sftp(customer.user.id, files, [`ls ${product}`]);
    expect(listing.code).toBe(0);
    expect(listing.stdout).not.toContain(version);
    for (const command of [
      `get ${product}/${version}/${name} x.bin`,
      `get other-product/1.0.0/x.bin`,
      `ls /other-product`,
      `put ${join(files.home, 'batch')} ${product}/${version}/x`,
      `rm ${product}/${version}/${name}`,
    ]) {
      const refused = await sftp(customer.user.id, files, [command]);
      expect(refused.code, command).not.toBe(0);
      expect(refused.stderr, command).toMatch(/not found|No such file|denied|not supported|Failure/i);
    }
    const denials = await auditEvents(customer.tenant, 'authorization.denied');
    // a version outside the contract is not there for them (as HTTPS answers its version 404): the put into it is refused as closed
    expect(denials.map((e) => e.reason)).toEqual(expect.arrayContaining(['version_closed', 'remove_refused']));
  });

  it('a partner uploads to its location, sees nothing else, and cannot read back what it sent', async () => {
    const partner = await provisionReleaseTenant(suite, { roles: ['uploader'], products: [product] });
    const files = sshKeyFiles(dir, 'partner');
    await certify(partner, files);
    writeFileSync(join(files.home, 'crash.dmp'), randomBytes(200_000));
    const sent = await sftp(partner.user.id, files, [`ls ${product}`, `put crash.dmp ${product}/upload/`, `ls ${product}/upload`]);
    expect(sent.code).toBe(0);
    expect(
      sent.stdout
        .split('\n')
        .filter((l) => l.startsWith(`${product}/`))
        .map((l) => l.trim()),
    ).toEqual([`${product}/upload`, `${product}/upload/crash.dmp`]);
    const token = (await suite.pas.password(partner.email, PASSWORD, 'releases')).access_token;
    const location = await suite.releases.getLocation(product, partner.tenant, { accessToken: token });
    expect(location.files.map((f) => ({ name: f.name, size: f.size, uploadedBy: f.uploadedBy }))).toEqual([{ name: 'crash.dmp', size: 200_000, uploadedBy: partner.user.id }]);
    const readBack = await sftp(partner.user.id, files, [`get ${product}/upload/crash.dmp back.dmp`]);
    expect(readBack.code).not.toBe(0);
    expect(readBack.stderr).toMatch(/denied/i);
  });

  it('EICAR put over SFTP is quarantined: the draft cannot be published and nobody can download it', async () => {
    const files = publisherKeys;
    writeFileSync(join(files.home, 'eicar.com'), EICAR);
    await certify(publisher, files);
    const put = await sftp(publisher.user.id, files, [`mkdir ${product}/drafts/4.0.0`, `put eicar.com ${product}/drafts/4.0.0/`]);
    expect(put.code).toBe(0);
    await waitForFile(publisher, '4.0.0', 'eicar.com', 'infected');
    await certify(publisher, files);
    const publish = await sftp(publisher.user.id, files, [`rename ${product}/drafts/4.0.0 ${product}/4.0.0`]);
    expect(publish.code).not.toBe(0);
    expect(publish.stderr).toMatch(/remote rename .*Failure/);
    const token = (await suite.pas.password(publisher.email, PASSWORD, 'releases')).access_token;
    expect((await suite.releases.getVersion(product, '4.0.0', { accessToken: token })).state).toBe('draft');
    const get = await sftp(publisher.user.id, files, [`get ${product}/drafts/4.0.0/eicar.com back.com`]);
    expect(get.code).not.toBe(0);
  });

  it('refuses an expired certificate, one for somebody else, and a key nobody registered; takes a key registered at the IdP', async () => {
    const customer = await provisionReleaseTenant(suite, { roles: ['downloader'] });
    const files = sshKeyFiles(dir, 'expired');
    const sign = (validBefore: Date, principal = customer.user.id) =>
      writeFileSync(
        `${files.key}-cert.pub`,
        `${signCertificate(extraCa, { publicKey: publicKeyFromKeyObject(files.privateKey), type: 'user', keyId: `keyway:${customer.tenant}:${customer.user.id}`, principals: [principal], validAfter: new Date(Date.now() - 3_600_000), validBefore, serial: 7n }).line}\n`,
      );
    // the same CA and key inside the window: taken (so what follows is refused for its window alone)
    sign(new Date(Date.now() + 600_000));
    expect((await sftp(customer.user.id, files, [`ls ${product}`])).code).toBe(0);

    sign(new Date(Date.now() - 120_000));
    const expired = await sftp(customer.user.id, files, [`ls ${product}`]);
    expect(expired.code).not.toBe(0);
    expect(expired.stderr).toContain('Permission denied (publickey)');
    sign(new Date(Date.now() + 600_000), 'somebody-else');
    expect((await sftp(customer.user.id, files, [`ls ${product}`])).code).not.toBe(0);
    const failures = (await suite.auditor.events({ subject: customer.user.id, action: 'login.failed' })).events;
    expect(failures.map((e) => e.reason)).toEqual(expect.arrayContaining(['certificate_expired']));

    // a plain key: refused until the operator registers it for the user (as for private_key_jwt), then taken
    const plain = await sftp(customer.user.id, files, [`ls ${product}`], { certificate: false });
    expect(plain.code).not.toBe(0);
    await suite.operator.registerKey(customer.tenant, customer.user.id, 'laptop', createPublicKey(files.privateKey).export({ format: 'jwk' }) as never);
    const registered = await sftp(customer.user.id, files, [`ls ${product}`], { certificate: false });
    expect(registered.stderr).toBe('');
    expect(registered.code).toBe(0);
    expect(registered.stdout).toContain(`${product}/${version}`);
  });
});
