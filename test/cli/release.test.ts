import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JWK } from 'jose';
import { downloadStatePath, releasesClient, uploadStatePath } from '@keyway/clients';
import { dpopKeyFromPem } from '@keyway/tokens';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { EICAR, startClamdServer, type ClamdServer } from '@keyway/testkit/servers';
import { PASSWORD, provisionReleaseTenant } from '../helpers.ts';
import { type KeywayRunOptions, operatorFiles, startKeywayAt } from './keyway.ts';

/*
 * Issue 13, machine clients: `keyway release …` as a CI/CD pipeline (a registered key pair, no
 * password) and as a person (`keyway release login`), on the real suite with a real clamd. The
 * interruptions are made in this process with the same client the CLI uses (aborted after half the
 * bytes); the CLI run that follows must resume from what the server (upload) or the disk (download) holds.
 */

const MiB = 1024 * 1024;
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

let suite: Suite;
let clamd: ClamdServer;
let dir: string;
let files: { ca: string; cert: string; key: string };
beforeAll(async () => {
  clamd = await startClamdServer();
  suite = await startSuite({ redisUrl: REDIS_URL, releases: { clamdAddress: clamd.address, clamdStreamMaxLength: '64M' } });
  dir = mkdtempSync(join(tmpdir(), 'keyway-cli-release-'));
  files = operatorFiles(suite, dir);
}, 120_000);
afterAll(async () => {
  await suite?.close();
  await clamd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const keyway = (args: string[], options?: KeywayRunOptions) => startKeywayAt(suite, dir, files, args, options).done;

/** A publisher of edr-agent whose pipeline logs in with an EC P-256 key registered under kid "ci" (no password used). */
async function pipeline() {
  const publisher = await provisionReleaseTenant(suite, { roles: ['publisher'], products: ['edr-agent'] });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await suite.operator.registerKey(publisher.tenant, publisher.user.id, 'ci', publicKey.export({ format: 'jwk' }) as JWK);
  const keyFile = join(dir, `${publisher.tenant}.key`);
  writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  return { ...publisher, env: { KEYWAY_CLIENT_ID: publisher.user.id, KEYWAY_CLIENT_KEY_FILE: keyFile, KEYWAY_CLIENT_KID: 'ci' } };
}

/** A file of `size` random bytes in the test folder. */
function randomFile(name: string, size: number) {
  const bytes = randomBytes(size);
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, bytes };
}

/** The releases client as the CLI builds it, with a pipeline's or a person's token. */
const releases = () => releasesClient({ baseUrl: suite.urls.releases, caPem: suite.pki.ca.certPem });
const passwordToken = async (email: string) => (await suite.pas.password(email, PASSWORD, 'releases')).access_token;

describe('keyway release (child process against the real suite and clamd)', () => {
  it('a pipeline uploads and publishes with its key (no password); an upload cut at half resumes from the server’s offset', async () => {
    const ci = await pipeline();
    const version = '1.2.0';
    const notes = randomFile('notes.txt', 2048);
    const uploaded = await keyway(['--json', 'release', 'upload', 'edr-agent', version, notes.path], { env: ci.env });
    expect(uploaded.stderr).toBe('');
    expect(uploaded.code).toBe(0);
    expect(JSON.parse(uploaded.stdout)).toMatchObject({
      product: 'edr-agent',
      version,
      files: [{ filename: 'notes.txt', size: 2048, sha256: sha(notes.bytes), resumedFrom: 0, sentBytes: 2048, fileState: 'scanning' }],
    });
    expect(existsSync(uploadStatePath(notes.path))).toBe(false);

    // the same person's upload cut after half its bytes (the client aborted), then `keyway release upload` again
    const big = randomFile('agent-1.2.0.tar.gz', 6 * MiB);
    const abort = new AbortController();
    const token = await passwordToken(ci.email);
    const cut = await releases()
      .upload(big.path, { product: 'edr-agent', version, chunkBytes: MiB }, { accessToken: () => token, signal: abort.signal, onProgress: (done) => done >= 3 * MiB && abort.abort(new Error('cut')) })
      .catch((err: unknown) => err);
    expect(cut).toMatchObject({ message: 'cut' });
    const state = JSON.parse(readFileSync(uploadStatePath(big.path), 'utf8')) as { url: string; sha256: string };
    expect(state).toMatchObject({ url: expect.stringMatching(/^\/v1\/uploads\/[0-9a-f]{32}$/), sha256: sha(big.bytes) });
    expect(statSync(uploadStatePath(big.path)).mode & 0o777).toBe(0o600);

    const resumed = await keyway(['--json', 'release', 'upload', 'edr-agent', version, big.path], { env: ci.env });
    expect(resumed.code).toBe(0);
    const [result] = (JSON.parse(resumed.stdout) as { files: { resumedFrom: number; sentBytes: number; sha256: string }[] }).files;
    expect(result!.resumedFrom).toBeGreaterThanOrEqual(2 * MiB);
    expect(result!.sentBytes).toBe(6 * MiB - result!.resumedFrom);
    expect(result!.sha256).toBe(sha(big.bytes));
    expect(resumed.stderr).toContain(`resumed at byte ${result!.resumedFrom}`);
    expect(existsSync(uploadStatePath(big.path))).toBe(false);

    const published = await keyway(['--json', 'release', 'publish', 'edr-agent', version, '--wait', '60'], { env: ci.env });
    expect(published.stderr).not.toContain('keyway:');
    expect(published.code).toBe(0);
    const detail = JSON.parse(published.stdout) as { state: string; files: { name: string; sha256: string; state: string }[] };
    expect(detail.state).toBe('published');
    expect(detail.files.map((f) => [f.name, f.sha256, f.state]).sort()).toEqual([
      ['agent-1.2.0.tar.gz', sha(big.bytes), 'clean'],
      ['notes.txt', sha(notes.bytes), 'clean'],
    ]);
    const listed = await keyway(['release', 'list', 'edr-agent', version], { env: ci.env });
    expect(listed.stdout).toMatch(/^agent-1\.2\.0\.tar\.gz +clean +6291456 /m);
  }, 300_000);

  it('publish refuses a version holding EICAR, naming the file and the signature (exit 4)', async () => {
    const ci = await pipeline();
    const eicar = join(dir, 'eicar.com');
    writeFileSync(eicar, EICAR);
    expect((await keyway(['release', 'upload', 'edr-agent', '6.6.6', eicar], { env: ci.env })).code).toBe(0);
    const refused = await keyway(['release', 'publish', 'edr-agent', '6.6.6', '--wait', '60'], { env: ci.env });
    expect(refused.code).toBe(4);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/^keyway: edr-agent 6\.6\.6 cannot be published: eicar\.com is infected \(.*\)$/m);
    expect(refused.stderr).toContain(clamd.eicarSignature);
    expect((await suite.releases.getVersion('edr-agent', '6.6.6', { accessToken: await passwordToken(ci.email) })).state).toBe('draft');
  }, 120_000);

  it('a customer logs in (its own session file), a download cut at half resumes with Range, the SHA-256 matches, and the report shows both parts', async () => {
    const ci = await pipeline();
    const version = '1.3.0';
    const file = randomFile('agent-1.3.0.bin', 4 * MiB);
    expect((await keyway(['release', 'upload', 'edr-agent', version, file.path], { env: ci.env })).code).toBe(0);
    expect((await keyway(['release', 'publish', 'edr-agent', version], { env: ci.env })).code).toBe(0);

    const customer = await provisionReleaseTenant(suite);
    const configHome = join(dir, `config-${customer.tenant}`);
    const login = await keyway(['release', 'login', customer.email], { input: `${PASSWORD}\n`, configHome });
    expect(login.code).toBe(0);
    expect(existsSync(join(configHome, 'keyway', 'release-session.json'))).toBe(true);
    // an operator's `keyway login` session is another file, untouched
    expect(existsSync(join(configHome, 'keyway', 'session.json'))).toBe(false);
    expect(statSync(join(configHome, 'keyway', 'release-session.json')).mode & 0o777).toBe(0o600);
    // bound to the CLI's DPoP key beside it (RFC 9449); releases take its access token as Bearer (README)
    const { jkt } = await dpopKeyFromPem(readFileSync(join(configHome, 'keyway', 'dpop-key.pem'), 'utf8'));
    expect(JSON.parse(readFileSync(join(configHome, 'keyway', 'release-session.json'), 'utf8'))).toMatchObject({ dpop_jkt: jkt });

    const dest = join(dir, `download-${customer.tenant}.bin`);
    const abort = new AbortController();
    const token = await passwordToken(customer.email);
    const link = { product: 'edr-agent', version, file: 'agent-1.3.0.bin' };
    const cut = await releases()
      .download(link, dest, { accessToken: () => token, signal: abort.signal, onProgress: (done) => done >= 2 * MiB && abort.abort(new Error('cut')) })
      .catch((err: unknown) => err);
    expect(cut).toMatchObject({ message: 'cut' });
    const partial = statSync(`${dest}.part`).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(4 * MiB);
    expect(JSON.parse(readFileSync(downloadStatePath(dest), 'utf8'))).toMatchObject({ etag: `"${sha(file.bytes)}"` });

    const url = `${suite.urls.releases}/products/edr-agent/${version}/agent-1.3.0.bin`;
    const resumed = await keyway(['--json', 'release', 'download', url, '-o', dest], { configHome });
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ path: dest, size: 4 * MiB, sha256: sha(file.bytes), resumedFrom: partial, receivedBytes: 4 * MiB - partial });
    expect(sha(readFileSync(dest))).toBe(sha(file.bytes));
    expect(existsSync(`${dest}.part`)).toBe(false);
    expect(existsSync(downloadStatePath(dest))).toBe(false);

    // a .part whose ETag is not the file's (it changed): If-Range does not match, the 200 starts again from zero
    const other = join(dir, `other-${customer.tenant}.bin`);
    writeFileSync(`${other}.part`, randomBytes(1000));
    writeFileSync(downloadStatePath(other), JSON.stringify({ url: `/products/edr-agent/${version}/agent-1.3.0.bin`, etag: `"${'0'.repeat(64)}"` }));
    const restarted = await releases().download(link, other, { accessToken: () => token });
    expect(restarted).toMatchObject({ resumedFrom: 0, receivedBytes: 4 * MiB, sha256: sha(file.bytes) });
    expect(sha(readFileSync(other))).toBe(sha(file.bytes));
    // a .part that is not a prefix of the file, under the right ETag: the SHA-256 check discards it
    const corrupt = join(dir, `corrupt-${customer.tenant}.bin`);
    writeFileSync(`${corrupt}.part`, randomBytes(1000));
    writeFileSync(downloadStatePath(corrupt), JSON.stringify({ url: `/products/edr-agent/${version}/agent-1.3.0.bin`, etag: `"${sha(file.bytes)}"` }));
    const discarded = await releases()
      .download(link, corrupt, { accessToken: () => token })
      .catch((err: unknown) => err);
    expect(discarded).toMatchObject({ message: expect.stringContaining(`not the ${sha(file.bytes)} the server states`) });
    expect(existsSync(`${corrupt}.part`)).toBe(false);
    expect(existsSync(corrupt)).toBe(false);

    const report = await keyway(['--json', '--cert', files.cert, '--key', files.key, 'release', 'report', '--tenant', customer.tenant]);
    expect(report.code).toBe(0);
    const downloads = (JSON.parse(report.stdout) as { downloads: { file: string; bytes: number; range?: string; subject?: string }[] }).downloads;
    expect(downloads).toEqual([
      expect.objectContaining({ file: 'agent-1.3.0.bin', bytes: 4 * MiB, subject: customer.user.id }),
      expect.objectContaining({ file: 'agent-1.3.0.bin', bytes: 4 * MiB - partial, range: `bytes=${partial}-${4 * MiB - 1}` }),
      expect.objectContaining({ bytes: 4 * MiB }),
      expect.objectContaining({ bytes: 4 * MiB - 1000, range: `bytes=1000-${4 * MiB - 1}` }),
    ]);
    expect(downloads[0]!.range).toBeUndefined();
    const readable = await keyway(['--cert', files.cert, '--key', files.key, 'release', 'report', '--tenant', customer.tenant]);
    expect(readable.stdout).toMatch(new RegExp(`agent-1\\.3\\.0\\.bin +${4 * MiB - partial} +bytes=${partial}-${4 * MiB - 1}$`, 'm'));

    // a downloader may not publish: 403 (exit 5); no credentials at all: exit 5 naming both logins
    // exit 6 is the CLI's "unavailable, retry later" (a busy upstream on a loaded machine): retried as a person would
    let denied = await keyway(['release', 'publish', 'edr-agent', version], { configHome });
    for (let retry = 0; denied.code === 6 && retry < 3; retry += 1) denied = await keyway(['release', 'publish', 'edr-agent', version], { configHome });
    expect(denied.code, denied.stderr).toBe(5);
    const none = await keyway(['release', 'list']);
    expect(none.code).toBe(5);
    expect(none.stderr).toContain('keyway release login');
  }, 300_000);
});
