import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { type ClamdServer, freePort, startClamdServer } from '@keyway/testkit/servers';
import { type ClientJob, type DownloadAnswer, type UploadAnswer, uploadBlock } from './releases-client.ts';
import { benchScratch, fixed, machine } from './measure.ts';
import { BENCH_PRODUCT, benchPerson } from './release-people.ts';

/**
 * The distribution center's figures (issue 13). Downloads: one file of RELEASES_BENCH_BYTES uploaded
 * through tus, scanned by a private clamd, published, then RELEASES_BENCH_CLIENTS concurrent HTTPS
 * downloads of it with a downloader's bearer token (authorization, audit record, Range-capable
 * streaming) against the same count from a plain node:https server streaming the same bytes with
 * fs.createReadStream, same certificate, same machine, same run. Sides alternate A B A B after a
 * warm-up; each figure is the median of its two runs, aggregate throughput = bytes / wall time.
 * Upload: RELEASES_BENCH_UPLOAD_BYTES through tus to a releases instance in a process of its own while
 * its RSS is sampled every 100 ms.
 */
const MiB = 1024 * 1024;
const BYTES = Number(process.env.RELEASES_BENCH_BYTES ?? 1024 * MiB);
/** 2 GiB less one byte: ClamAV judges no file of 2 GiB or more, so the service refuses one at creation (CLAMAV_MAX_FILE_BYTES) */
const UPLOAD_BYTES = Number(process.env.RELEASES_BENCH_UPLOAD_BYTES ?? 2048 * MiB - 1);
const CLIENTS = Number(process.env.RELEASES_BENCH_CLIENTS ?? 20);
/** the body's repeated block: files need not exist on the client's side */
const BLOCK = 16 * MiB;
const RSS_BOUND_MIB = 300;
const PRODUCT = BENCH_PRODUCT;
const VERSION = '1.0.0';
/**
 * clamd judges at most StreamMaxLength bytes (and ClamAV no file of 2 GiB or more): the bench's clamd
 * takes streams up to 4000M and files up to its 2 GiB ceiling, so the 1 GiB file is scanned whole
 * (clean), not waved through. The service is told the same (CLAMD_STREAM_MAX_LENGTH). clamd's
 * MaxScanTime (120 s) would stop a 1 GiB scan on a loaded 2-core machine (answered as a limit: too_large).
 */
const CLAMD_LIMIT = '4000M';
const CLAMD_SCAN_TIME_MS = 600_000;
const SCAN_TIMEOUT_MS = 15 * 60_000;

interface DownloadRun {
  side: 'releases' | 'static';
  bytes: number;
  seconds: number;
  mibPerSec: number;
  clientCpu: number;
}

export interface ReleasesFigures {
  bytes: number;
  clients: number;
  /** what each side negotiated */
  cipher: string;
  scanSeconds: number;
  runs: DownloadRun[];
  releasesMedian: number;
  staticMedian: number;
  upload: { bytes: number; seconds: number; status: number; baselineRssMiB: number; maxRssMiB: number; finalState: string };
}

/** progress on stderr: a full run takes many minutes, and the tables come at its end */
const progress = (line: string) => process.stderr.write(`releases bench: ${line}\n`);

const CLIENT = fileURLToPath(new URL('./releases-client.ts', import.meta.url));

/** Runs one client job in a child process (tsx), answering its one JSON line. */
function runClient<T>(job: ClientJob): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLIENT, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as T) : reject(new Error(`releases bench client (${job.kind}) exited with ${code}`))));
  });
}

/** `count` bytes of the repeated block, and their SHA-256. */
function* body(count: number, block: Buffer) {
  for (let sent = 0; sent < count; sent += block.length) yield block.subarray(0, Math.min(block.length, count - sent));
}
const sha256Of = (count: number, block: Buffer) => {
  const hash = createHash('sha256');
  for (const chunk of body(count, block)) hash.update(chunk);
  return hash.digest('hex');
};

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
};

async function stateOf(suite: Suite, token: string, version: string, name: string): Promise<string> {
  const found = await suite.releases.getVersion(PRODUCT, version, { accessToken: token });
  return found.files.find((f) => f.name === name)?.state ?? 'missing';
}

/** Polls a file's state until it leaves `scanning` / `scan_pending`, or the timeout. */
async function settled(suite: Suite, token: () => Promise<string>, version: string, name: string): Promise<string> {
  const deadline = Date.now() + SCAN_TIMEOUT_MS;
  for (;;) {
    const state = await stateOf(suite, await token(), version, name);
    if ((state !== 'scanning' && state !== 'scan_pending') || Date.now() > deadline) return state;
    await sleep(1000);
  }
}

const SERVICE_MAIN = fileURLToPath(new URL('../services/releases/src/main.ts', import.meta.url));

/** VmRSS of a process, from /proc (Linux), in bytes; 0 once it is gone. */
const rssOf = (pid: number) => {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
};

/**
 * A second releases instance in a process of its own (its main.ts, as an operator runs it) on the
 * suite's database, Redis and clamd, so the upload's RSS is the releases service's alone. Its
 * PUBLIC_URL is the suite's releases URL: the audience PAS gives scope=releases tokens.
 */
async function standaloneReleases(s: Suite, dir: string, clamdAddress: string): Promise<{ url: string; child: ChildProcess }> {
  const tls = s.pki.certs.releases;
  const databaseUrl = s.database?.serviceUrl('releases');
  if (!tls || !databaseUrl) throw new Error('the suite has no releases certificate or no PostgreSQL');
  writeFileSync(join(dir, 'releases.crt'), tls.certPem);
  writeFileSync(join(dir, 'releases.key'), tls.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'ca.crt'), s.pki.ca.certPem);
  const port = await freePort();
  const env = {
    PATH: process.env.PATH ?? '',
    KEYWAY_ENV: 'development',
    LOG_LEVEL: 'warn',
    PORT: String(port),
    TLS_CERT_FILE: join(dir, 'releases.crt'),
    TLS_KEY_FILE: join(dir, 'releases.key'),
    TLS_CA_FILE: join(dir, 'ca.crt'),
    REDIS_URL,
    DATABASE_URL: databaseUrl,
    STORE_PREFIX: `keyway-bench-${randomUUID()}`,
    PUBLIC_URL: s.urls.releases,
    PAS_URL: s.urls.pas,
    ENTITLEMENT_URL: s.urls.entitlement,
    RELEASES_STORAGE_DIR: join(dir, 'standalone-storage'),
    CLAMD_ADDRESS: clamdAddress,
    CLAMD_STREAM_MAX_LENGTH: CLAMD_LIMIT,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', SERVICE_MAIN], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `https://localhost:${port}`;
  for (const deadline = Date.now() + 90_000; ; await sleep(500)) {
    if (child.exitCode !== null) throw new Error(`the standalone releases service exited with ${child.exitCode}`);
    const ready = await new Promise<boolean>((resolve) => {
      const req = request(`${url}/readyz`, { ca: s.pki.ca.certPem }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.end();
    });
    if (ready) return { url, child };
    if (Date.now() > deadline) throw new Error('the standalone releases service was not ready within 90 s');
  }
}

export async function releases(): Promise<ReleasesFigures> {
  // everything of this run under one folder removed at the end: the clamd's scratch, the suite's PKI and file storage
  const scratch = benchScratch('keyway-releases-bench-');
  const { dir } = scratch;
  let clamd: ClamdServer | undefined;
  let suite: Suite | undefined;
  let stopStatic: (() => Promise<void>) | undefined;
  let stopStandalone: (() => Promise<void>) | undefined;
  try {
    clamd = await startClamdServer({ conf: { StreamMaxLength: CLAMD_LIMIT, MaxFileSize: CLAMD_LIMIT, MaxScanSize: CLAMD_LIMIT, MaxScanTime: String(CLAMD_SCAN_TIME_MS) } });
    suite = await startSuite({ redisUrl: REDIS_URL, releases: { clamdAddress: clamd.address, clamdStreamMaxLength: CLAMD_LIMIT } });
    const s = suite;
    const caPem = s.pki.ca.certPem;
    const publisher = await benchPerson(s, 'publisher');
    const downloader = await benchPerson(s, 'downloader');

    // the file: written once for the static server, uploaded by the client from the same block
    const block = uploadBlock(BLOCK, 1);
    const file = join(dir, 'bench-agent.bin');
    await pipeline(body(BYTES, block), createWriteStream(file));
    const name = 'bench-agent.bin';
    const uploaded = await runClient<UploadAnswer>({
      kind: 'upload',
      base: s.urls.releases,
      token: await publisher.token(),
      bytes: BYTES,
      block: BLOCK,
      seed: 1,
      sha256: sha256Of(BYTES, block),
      metadata: { product: PRODUCT, version: VERSION, filename: name },
      caPem,
    });
    if (uploaded.status !== 204) throw new Error(`upload of the download file: ${uploaded.status} ${uploaded.fileState}`);
    const scanStarted = Date.now();
    const state = await settled(s, publisher.token, VERSION, name);
    const scanSeconds = (Date.now() - scanStarted) / 1000;
    if (state !== 'clean') throw new Error(`the download file is ${state}, not clean`);
    progress(`${BYTES} bytes uploaded and scanned clean in ${scanSeconds.toFixed(1)} s`);
    await s.releases.publish(PRODUCT, VERSION, { accessToken: await publisher.token() });

    // the baseline: node:https and fs.createReadStream, the releases service's certificate and TLS floor
    const tls = s.pki.certs.releases;
    if (!tls) throw new Error('no releases certificate in the suite');
    const plain = createServer({ cert: tls.certPem, key: tls.keyPem, ca: caPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BYTES) });
      pipeline(createReadStream(file), res).catch(() => undefined);
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    stopStatic = () =>
      new Promise<void>((resolve) => {
        plain.close(() => resolve());
        plain.closeAllConnections();
      });
    const staticUrl = `https://localhost:${(plain.address() as AddressInfo).port}/${name}`;
    const releasesUrl = `${s.urls.releases}/products/${PRODUCT}/${VERSION}/${name}`;

    const run = async (side: DownloadRun['side'], clients: number): Promise<DownloadRun & { cipher: string }> => {
      const headers: Record<string, string> = side === 'releases' ? { authorization: `Bearer ${await downloader.token()}` } : {};
      const answer = await runClient<DownloadAnswer>({ kind: 'download', url: side === 'releases' ? releasesUrl : staticUrl, headers, clients, caPem });
      if (answer.bytes !== BYTES * clients) throw new Error(`${side}: ${answer.bytes} bytes, not ${BYTES * clients}`);
      progress(`${clients} downloads from ${side}: ${(answer.bytes / MiB / answer.seconds).toFixed(0)} MiB/s`);
      return { side, bytes: answer.bytes, seconds: answer.seconds, mibPerSec: answer.bytes / MiB / answer.seconds, clientCpu: answer.clientCpu, cipher: answer.cipher };
    };
    // warm-up: the file in the page cache, JIT, the authorization path
    await run('releases', 2);
    await run('static', 2);
    const runs: (DownloadRun & { cipher: string })[] = [];
    for (let i = 0; i < 2; i += 1) {
      runs.push(await run('releases', CLIENTS));
      runs.push(await run('static', CLIENTS));
    }
    await stopStatic();
    stopStatic = undefined;
    rmSync(file, { force: true });

    // upload RSS: every 100 ms during the tus upload, the releases service's own process
    const standalone = await standaloneReleases(s, dir, clamd.address);
    stopStandalone = () => {
      const gone = new Promise((resolve) => standalone.child.once('exit', resolve));
      standalone.child.kill('SIGTERM');
      return gone.then(() => undefined);
    };
    const uploadBlockBuffer = uploadBlock(BLOCK, 2);
    const uploadSha = sha256Of(UPLOAD_BYTES, uploadBlockBuffer);
    const pid = standalone.child.pid ?? 0;
    const baselineRss = rssOf(pid);
    let maxRss = baselineRss;
    const sampler = setInterval(() => {
      maxRss = Math.max(maxRss, rssOf(pid));
    }, 100);
    const upload = await runClient<UploadAnswer>({
      kind: 'upload',
      base: standalone.url,
      token: await publisher.token(),
      bytes: UPLOAD_BYTES,
      block: BLOCK,
      seed: 2,
      sha256: uploadSha,
      metadata: { product: PRODUCT, version: '2.0.0', filename: 'bench-large.bin' },
      caPem,
    }).finally(() => clearInterval(sampler));
    progress(`${UPLOAD_BYTES} bytes uploaded: ${upload.status} in ${upload.seconds.toFixed(1)} s, max RSS ${(maxRss / MiB).toFixed(0)} MiB`);
    // not waited for: the suite's instance shares the scan queue but not this instance's files (a 2 GiB file ends too_large anyway: ClamAV's file ceiling)
    const finalState = upload.fileState;

    const side = (which: DownloadRun['side']) => median(runs.filter((r) => r.side === which).map((r) => r.mibPerSec));
    return {
      bytes: BYTES,
      clients: CLIENTS,
      // the same certificate and TLS floor on both sides: a different suite negotiated would make the ratio unfair
      cipher: [...new Set(runs.map((r) => `${r.side} ${r.cipher}`))].join(', '),
      scanSeconds,
      runs: runs.map(({ cipher: _, ...r }) => r),
      releasesMedian: side('releases'),
      staticMedian: side('static'),
      upload: { bytes: UPLOAD_BYTES, seconds: upload.seconds, status: upload.status, baselineRssMiB: baselineRss / MiB, maxRssMiB: maxRss / MiB, finalState },
    };
  } finally {
    await stopStatic?.();
    await stopStandalone?.();
    await suite?.close();
    await clamd?.stop();
    scratch.remove();
  }
}

const size = (bytes: number) => (bytes >= 1024 * MiB ? `${fixed(bytes / 1024 / MiB, 1)} GiB` : `${fixed(bytes / MiB, 0)} MiB`);

/** Markdown for the README: each run, the medians and their ratio, the upload's RSS against its bound. */
export function releasesTable(f: ReleasesFigures): string {
  const rows = f.runs.map((r, i) => `| ${i + 1} | ${r.side} | ${fixed(r.mibPerSec, 0)} | ${fixed(r.seconds, 2)} s | ${fixed(100 * r.clientCpu, 0)} % |`);
  const ratio = f.releasesMedian / f.staticMedian;
  return [
    `### Release downloads (${f.clients} concurrent downloads of a ${size(f.bytes)} file over HTTPS, ${f.cipher}; runs alternate)`,
    '',
    '| run | server | MiB/s (aggregate) | wall | client CPU |',
    '| ---: | --- | ---: | ---: | ---: |',
    ...rows,
    '',
    `- median: releases service ${fixed(f.releasesMedian, 0)} MiB/s, plain node:https ${fixed(f.staticMedian, 0)} MiB/s: **${fixed(ratio, 2)} ×** (target ≥ 0.80)`,
    `- the file was scanned whole by clamd in ${fixed(f.scanSeconds, 1)} s before it could be published`,
    `- upload of ${size(f.upload.bytes)} through tus (one PATCH): ${f.upload.status}, ${fixed(f.upload.seconds, 1)} s, then \`${f.upload.finalState}\`; RSS of the releases service's own process ${fixed(f.upload.baselineRssMiB, 0)} MiB before, **max ${fixed(f.upload.maxRssMiB, 0)} MiB** (bound ${RSS_BOUND_MIB} MiB)`,
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${machine()}\n\n${releasesTable(await releases())}`);
}
