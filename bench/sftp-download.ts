import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { openSshPrivateKey } from '@keyway/ssh';
import { REDIS_URL, sftpBatchArgs, sshKeyFiles, startSuite, type Suite } from '@keyway/testkit';
import { type ClamdServer, freePort, startClamdServer } from '@keyway/testkit/servers';
import { benchScratch, fixed, machine } from './measure.ts';
import { BENCH_PRODUCT, benchPerson } from './release-people.ts';

/**
 * Issue 17: SFTP download throughput of one SIZE_MIB file (default 1 GiB) from the releases service's
 * SFTP front against OpenSSH's own sshd + sftp-server on the same machine, in the same run, with the
 * same client (Debian's `sftp -b`, `get` to a file on the same disk, removed after each run) and the
 * same cipher forced on both sides (aes128-gcm@openssh.com, then chacha20-poly1305@openssh.com).
 *
 * Keyway side: the file goes in the way a publisher puts it, with no shortcut: `sftp put` into a
 * draft, scanned whole by the testkit's private clamd (a real clamd with one signature, its stream
 * and file limits raised to 4000M as bench/releases.ts does), published by renaming the draft; then a
 * downloader with a PAS certificate `get`s it. OpenSSH side: a private `/usr/sbin/sshd -D -e` (Debian's
 * openssh-server) on a free loopback port with its own host key, authorized key file and
 * `Subsystem sftp /usr/lib/openssh/sftp-server`, serving a file of the same size of random bytes.
 * Both sides serve random bytes (no compression on either).
 *
 * After a warm-up on each side, SFTP_BENCH_RUNS (3) runs alternate keyway / openssh; each figure is
 * the median MiB/s. The releases service runs in this process (the suite), so its CPU during the
 * runs is process.cpuUsage() here (all suite services, mostly idle but for releases).
 */
const MiB = 1024 * 1024;
const SIZE_MIB = Number(process.env.SIZE_MIB ?? 1024);
const BYTES = SIZE_MIB * MiB;
const RUNS = Number(process.env.SFTP_BENCH_RUNS ?? 3);
const CIPHERS = ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com'];
const CLAMD_LIMIT = '4000M';
const PRODUCT = BENCH_PRODUCT;
const VERSION = '1.0.0';
const NAME = 'bench-agent.bin';
const SCAN_TIMEOUT_MS = 15 * 60_000;

const progress = (line: string) => process.stderr.write(`sftp bench: ${line}\n`);

interface Run {
  side: 'keyway' | 'openssh';
  cipher: string;
  seconds: number;
  mibPerSec: number;
  /** CPU seconds of this process (the suite, hence the releases service) during a keyway run */
  serverCpuSeconds?: number;
}

export interface SftpFigures {
  bytes: number;
  runs: Run[];
  ciphers: { cipher: string; keyway: number; openssh: number; keywayCpu: number }[];
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
};

type Keys = ReturnType<typeof sshKeyFiles>;

/** A fresh certificate from PAS's CA beside the key (`keyway ssh login`), so none expires mid-bench. */
async function certify(suite: Suite, who: Awaited<ReturnType<typeof benchPerson>>, keys: Keys) {
  const issued = await suite.pas.sshCertificate(await who.token(), keys.line);
  writeFileSync(`${keys.key}-cert.pub`, `${issued.certificate}\n`);
}

interface Target {
  port: number;
  user: string;
  keys: Keys;
  knownHosts: string;
  certificate: boolean;
}

/** Debian's `sftp` in batch mode; resolves with its wall time, rejects on a non-zero exit or any stderr. */
function sftp(target: Target, commands: string[], cipher?: string): Promise<number> {
  const batch = join(target.keys.home, 'batch');
  writeFileSync(batch, `${commands.join('\n')}\n`);
  const args = sftpBatchArgs({ port: target.port, user: target.user, key: target.keys.key, certificate: target.certificate, knownHosts: target.knownHosts, batch, cipher, quiet: true });
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    execFile('sftp', args, { cwd: target.keys.home, timeout: 30 * 60_000, maxBuffer: 4 * MiB }, (err, _stdout, stderr) => {
      if (err || stderr.trim()) reject(new Error(`sftp ${commands.join('; ')}: ${err?.message ?? ''} ${stderr}`));
      else resolve(Number(process.hrtime.bigint() - started) / 1e9);
    });
  });
}

const portAccepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/** A private sshd (Debian's openssh-server) on a free loopback port: its own host key, authorized keys and sftp-server. */
async function startSshd(dir: string, client: Keys): Promise<{ port: number; knownHosts: string; child: ChildProcess }> {
  const home = join(dir, 'sshd');
  mkdirSync(home, { recursive: true });
  const hostKey = join(home, 'host_ed25519');
  writeFileSync(hostKey, openSshPrivateKey(generateKeyPairSync('ed25519').privateKey), { mode: 0o600 });
  const authorized = join(home, 'authorized_keys');
  writeFileSync(authorized, `${client.line}\n`, { mode: 0o600 });
  const port = await freePort();
  const config = join(home, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${authorized}`,
      `PidFile ${join(home, 'sshd.pid')}`,
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'Compression no',
      'Subsystem sftp /usr/lib/openssh/sftp-server',
      '',
    ].join('\n'),
  );
  if (!existsSync('/usr/sbin/sshd') || !existsSync('/usr/lib/openssh/sftp-server'))
    throw new Error("the SFTP bench needs Debian's openssh-server (apt-get install openssh-server; its service need not run)");
  // privilege separation wants its empty directory (the Debian service creates it at start)
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    errors += chunk;
  });
  for (const deadline = Date.now() + 10_000; !(await portAccepts(port)); await sleep(100)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`sshd did not start: ${errors}`);
  }
  const knownHosts = join(home, 'known_hosts');
  const publicHost = await new Promise<string>((resolve, reject) => execFile('ssh-keygen', ['-y', '-f', hostKey], (err, stdout) => (err ? reject(err) : resolve(stdout.trim()))));
  writeFileSync(knownHosts, `[localhost]:${port} ${publicHost}\n`);
  return { port, knownHosts, child };
}

async function published(suite: Suite, token: () => Promise<string>): Promise<string> {
  const deadline = Date.now() + SCAN_TIMEOUT_MS;
  for (;;) {
    const found = await suite.releases.getVersion(PRODUCT, VERSION, { accessToken: await token() });
    const state = found.files.find((f) => f.name === NAME)?.state ?? 'missing';
    if ((state !== 'scanning' && state !== 'scan_pending') || Date.now() > deadline) return state;
    await sleep(1000);
  }
}

export async function sftpDownload(): Promise<SftpFigures> {
  const scratch = benchScratch('keyway-sftp-bench-');
  const { dir } = scratch;
  let clamd: ClamdServer | undefined;
  let suite: Suite | undefined;
  let sshd: ChildProcess | undefined;
  try {
    // the file: random bytes, served by sshd from here, and put into the releases service from here
    const file = join(dir, NAME);
    await pipeline(
      (function* () {
        for (let left = BYTES; left > 0; left -= 16 * MiB) yield randomBytes(Math.min(16 * MiB, left));
      })(),
      createWriteStream(file),
    );

    clamd = await startClamdServer({ conf: { StreamMaxLength: CLAMD_LIMIT, MaxFileSize: CLAMD_LIMIT, MaxScanSize: CLAMD_LIMIT, MaxScanTime: '600000' } });
    suite = await startSuite({ redisUrl: REDIS_URL, releases: { clamdAddress: clamd.address, clamdStreamMaxLength: CLAMD_LIMIT } });
    const s = suite;
    const caLine = `@cert-authority localhost ${await s.pas.sshCaPublicKey()}\n`;

    // publish as a publisher would over SFTP: put into a draft, clamd's verdict, rename the draft
    const publisher = await benchPerson(s, 'publisher');
    const publisherKeys = sshKeyFiles(dir, 'publisher');
    const keyway = (who: string, keys: Keys): Target => {
      const knownHosts = join(keys.home, 'known_hosts');
      writeFileSync(knownHosts, caLine);
      return { port: s.releasesSftpPort(), user: who, keys, knownHosts, certificate: true };
    };
    await certify(s, publisher, publisherKeys);
    const putSeconds = await sftp(keyway(publisher.id, publisherKeys), [`mkdir ${PRODUCT}/drafts/${VERSION}`, `put ${file} ${PRODUCT}/drafts/${VERSION}/${NAME}`]);
    const scanStarted = Date.now();
    const state = await published(s, publisher.token);
    if (state !== 'clean') throw new Error(`the file is ${state}, not clean`);
    progress(`${BYTES} bytes put over SFTP in ${putSeconds.toFixed(1)} s, scanned clean in ${((Date.now() - scanStarted) / 1000).toFixed(1)} s`);
    await certify(s, publisher, publisherKeys);
    await sftp(keyway(publisher.id, publisherKeys), [`rename ${PRODUCT}/drafts/${VERSION} ${PRODUCT}/${VERSION}`]);

    const downloader = await benchPerson(s, 'downloader');
    const downloaderKeys = sshKeyFiles(dir, 'downloader');
    const keywayTarget = keyway(downloader.id, downloaderKeys);

    const opensshKeys = sshKeyFiles(dir, 'openssh');
    const started = await startSshd(dir, opensshKeys);
    sshd = started.child;
    const opensshTarget: Target = { port: started.port, user: process.env.USER ?? 'root', keys: opensshKeys, knownHosts: started.knownHosts, certificate: false };

    const out = join(dir, 'downloaded.bin');
    const run = async (side: Run['side'], cipher: string): Promise<Run> => {
      rmSync(out, { force: true });
      if (side === 'keyway') await certify(s, downloader, downloaderKeys);
      const cpu = process.cpuUsage();
      const seconds = side === 'keyway' ? await sftp(keywayTarget, [`get ${PRODUCT}/${VERSION}/${NAME} ${out}`], cipher) : await sftp(opensshTarget, [`get ${file} ${out}`], cipher);
      const used = process.cpuUsage(cpu);
      const got = statSync(out).size;
      rmSync(out, { force: true });
      if (got !== BYTES) throw new Error(`${side}: ${got} bytes, not ${BYTES}`);
      const figure: Run = { side, cipher, seconds, mibPerSec: BYTES / MiB / seconds };
      if (side === 'keyway') figure.serverCpuSeconds = (used.user + used.system) / 1e6;
      progress(`${side} ${cipher}: ${figure.mibPerSec.toFixed(0)} MiB/s${figure.serverCpuSeconds === undefined ? '' : `, releases process CPU ${figure.serverCpuSeconds.toFixed(1)} s`}`);
      return figure;
    };

    const runs: Run[] = [];
    const ciphers: SftpFigures['ciphers'] = [];
    for (const cipher of CIPHERS) {
      await run('keyway', cipher);
      await run('openssh', cipher);
      const these: Run[] = [];
      for (let i = 0; i < RUNS; i += 1) {
        these.push(await run('keyway', cipher));
        these.push(await run('openssh', cipher));
      }
      runs.push(...these);
      const side = (which: Run['side']) => these.filter((r) => r.side === which);
      ciphers.push({
        cipher,
        keyway: median(side('keyway').map((r) => r.mibPerSec)),
        openssh: median(side('openssh').map((r) => r.mibPerSec)),
        keywayCpu: median(side('keyway').map((r) => (r.serverCpuSeconds ?? 0) / r.seconds)),
      });
    }
    return { bytes: BYTES, runs, ciphers };
  } finally {
    if (sshd && sshd.exitCode === null) {
      const gone = new Promise((resolve) => sshd?.once('exit', resolve));
      sshd.kill('SIGTERM');
      await gone;
    }
    await suite?.close();
    await clamd?.stop();
    scratch.remove();
  }
}

/** Markdown for the README: each run, then per cipher the medians and their ratio. */
export function sftpDownloadTable(f: SftpFigures): string {
  const rows = f.runs.map(
    (r, i) =>
      `| ${i + 1} | ${r.cipher} | ${r.side} | ${fixed(r.mibPerSec, 0)} | ${fixed(r.seconds, 2)} s | ${r.serverCpuSeconds === undefined ? '' : `${fixed((100 * r.serverCpuSeconds) / r.seconds, 0)} %`} |`,
  );
  return [
    `### SFTP downloads (one ${fixed(f.bytes / MiB, 0)} MiB file, Debian's sftp, releases service against OpenSSH's sshd + sftp-server; runs alternate)`,
    '',
    '| run | cipher | server | MiB/s | wall | releases process CPU |',
    '| ---: | --- | --- | ---: | ---: | ---: |',
    ...rows,
    '',
    ...f.ciphers.map(
      (c) =>
        `- ${c.cipher}: releases service ${fixed(c.keyway, 0)} MiB/s (process CPU ${fixed(100 * c.keywayCpu, 0)} %), OpenSSH ${fixed(c.openssh, 0)} MiB/s: **${fixed(c.keyway / c.openssh, 2)} ×** (target ≥ 0.50)`,
    ),
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${machine()}\n\n${sftpDownloadTable(await sftpDownload())}`);
}
