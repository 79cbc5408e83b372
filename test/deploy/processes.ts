import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHttp } from '@keyway/clients';
import { ensureDevKek } from '@keyway/seal';
import { createRedisStore } from '@keyway/store';
import { AMQP_URL, REDIS_URL, SERVICES, type ServiceName, type TestDatabase } from '@keyway/testkit';
import { freePort } from '@keyway/testkit/servers';
import type { DevPki } from '@keyway/tls';

/**
 * Services as their own OS processes, started from their main.ts as an operator runs them, for the
 * tests that need a real process (exit codes, SIGTERM, SIGKILL).
 */

export { freePort };

const outputOf = new WeakMap<ChildProcess, { stdout: string[]; stderr: string[] }>();

/** Spawns `command` with only PATH inherited, keeping what it writes for exited() and logLines(). */
export function spawnKept(command: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(command, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: [] as string[], stderr: [] as string[] };
  outputOf.set(child, output);
  child.stdout?.on('data', (d: Buffer) => output.stdout.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => output.stderr.push(d.toString()));
  return child;
}

/** Starts services/<service>/src/main.ts in a process of its own with exactly `env` (and PATH). */
export const runService = (service: string, env: Record<string, string>): ChildProcess => spawnKept(process.execPath, ['--import', 'tsx', `services/${service}/src/main.ts`], env);

export const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const done = () => resolve({ code: child.exitCode, stdout: (outputOf.get(child)?.stdout ?? []).join(''), stderr: (outputOf.get(child)?.stderr ?? []).join('') });
    if (child.exitCode !== null || child.signalCode !== null) done();
    else child.on('exit', done);
  });

/** SIGTERMs every child and waits until each has exited (an afterAll's first step). */
export const stopAll = (children: Iterable<ChildProcess>) =>
  Promise.all(
    [...children].map((child) => {
      const done = exited(child);
      child.kill('SIGTERM');
      return done;
    }),
  );

/** Deletes every Redis key under `prefix`: (the STORE_PREFIX a test gave its services). */
export async function clearStorePrefix(prefix: string): Promise<void> {
  const store = await createRedisStore({ url: REDIS_URL, prefix: `${prefix}:` });
  const keys = await store.keys('');
  if (keys.length > 0) await store.del(...keys);
  await store.close();
}

/**
 * `npm pack` of the package in `packageDir`, installed globally under `prefixDir`/global, offline (the
 * built packages depend on nothing), with an npm cache of its own: answers the directory of its bins.
 */
export function packInstall(packageDir: string, prefixDir: string): string {
  const npm = (args: string[]) => {
    const run = spawnSync('npm', [...args, '--offline', '--no-audit', '--no-fund', '--cache', join(prefixDir, 'cache')], { cwd: prefixDir, encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`npm ${args[0]} failed (${run.status}): ${run.stderr}`);
    return run.stdout;
  };
  const [packed] = JSON.parse(npm(['pack', packageDir, '--json'])) as { filename: string }[];
  npm(['install', '-g', '--prefix', join(prefixDir, 'global'), join(prefixDir, packed!.filename)]);
  return join(prefixDir, 'global/bin');
}

/** What a child wrote to stderr so far (the tail), for a failing test's message. */
export const stderrOf = (child: ChildProcess, chars = 2000): string => (outputOf.get(child)?.stderr ?? []).join('').slice(-chars);

/** What a child wrote to stdout so far (the tail). */
export const stdoutOf = (child: ChildProcess, chars = 2000): string => (outputOf.get(child)?.stdout ?? []).join('').slice(-chars);

/** the JSON log lines a child wrote so far */
export const logLines = (child: ChildProcess) =>
  (outputOf.get(child)?.stdout ?? [])
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { level: string; msg: string });

/** Waits until GET `url`/readyz answers 200; throws naming `name` after `timeoutMs`, or as soon as `child` has exited. */
export async function waitReady(name: string, url: string, caPem: string, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const http = createHttp({ baseUrl: url, caPem, timeoutMs: 1000 });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await http.get('/readyz').then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}): ${stderrOf(child)}${stdoutOf(child)}`);
    if (Date.now() > deadline) throw new Error(`${name} did not become ready within ${timeoutMs} ms${child ? `: ${stderrOf(child)}` : ''}`);
    await sleep(200);
  }
}

/** The certificate a service presents on a new connection (no session resumed). */
export function presented(url: string, caPem: string): Promise<PeerCertificate> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca: caPem, servername: hostname, minVersion: 'TLSv1.2' }, () => {
      const peer = socket.getPeerCertificate();
      socket.end();
      resolve(peer);
    });
    socket.on('error', reject);
  });
}

/** Writes the CA and every certificate and key of `pki` into `dir` as <name>.crt / <name>.key (keys 0600), as an operator deploys them. */
export function writePkiFiles(dir: string, pki: DevPki): void {
  writeFileSync(join(dir, 'ca.crt'), pki.ca.certPem);
  for (const [name, pair] of Object.entries(pki.certs)) {
    writeFileSync(join(dir, `${name}.crt`), pair.certPem);
    writeFileSync(join(dir, `${name}.key`), pair.keyPem, { mode: 0o600 });
  }
}

/** What every service's environment holds: its listener, its PKI files in `dir` (writePkiFiles), the suite's Redis and its own database role. */
export const serviceEnv = (name: ServiceName, options: { dir: string; database: TestDatabase; prefix: string; port: number | string }) => ({
  PORT: String(options.port),
  TLS_CERT_FILE: join(options.dir, `${name}.crt`),
  TLS_KEY_FILE: join(options.dir, `${name}.key`),
  TLS_CA_FILE: join(options.dir, 'ca.crt'),
  REDIS_URL,
  DATABASE_URL: options.database.serviceUrl(name),
  LOG_LEVEL: 'warn',
  STORE_PREFIX: options.prefix,
});

/**
 * Each service's production environment (KEYWAY_ENV unset) on the real PostgreSQL, Redis and RabbitMQ,
 * with its PKI files in `dir` (writePkiFiles): the operator's keyring and the audit checkpoint key are
 * written there too. Answers the environments and the services' URLs.
 */
export async function productionEnvs(options: { dir: string; database: TestDatabase; prefix: string; clamdAddress: string }) {
  const { dir, database, prefix } = options;
  const ports = {} as Record<ServiceName, number>;
  const urls = {} as Record<ServiceName, string>;
  for (const name of SERVICES) {
    ports[name] = await freePort();
    urls[name] = `https://localhost:${ports[name]}`;
  }
  const sftpPort = await freePort();
  // production: the audit service's checkpoint key is configured, never generated
  writeFileSync(join(dir, 'audit-checkpoint.key'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  // the operator's keyring (0600) that PAS and PAC seal their keys under, and the IdP its TOTP secrets
  const kekFile = await ensureDevKek(dir);
  const common = (name: ServiceName) => serviceEnv(name, { dir, database, prefix, port: ports[name] });
  // KEYWAY_ENV unset: production, so every service but the IdP needs AMQP_URL too
  const env: Record<ServiceName, Record<string, string>> = {
    idp: { ...common('idp'), KEYWAY_KEK_FILE: kekFile, PAS_URL: urls.pas, ENTITLEMENT_URL: urls.entitlement },
    entitlement: { ...common('entitlement'), AMQP_URL, PUBLIC_URL: urls.entitlement, IDP_URL: urls.idp, PAS_URL: urls.pas, PAC_URL: urls.pac, AUDIT_URL: urls.audit, TOPIC_URL: urls.topic },
    // RELEASES_AUDIENCE: PAS then certifies the releases service's SFTP host key for that host name alone
    pas: {
      ...common('pas'),
      AMQP_URL,
      KEYWAY_KEK_FILE: kekFile,
      PUBLIC_URL: urls.pas,
      ACCESS_AUDIENCE: urls.pac,
      RELEASES_AUDIENCE: urls.releases,
      IDP_URL: urls.idp,
      ENTITLEMENT_URL: urls.entitlement,
      AUDIT_URL: urls.audit,
    },
    pac: { ...common('pac'), AMQP_URL, KEYWAY_KEK_FILE: kekFile, PUBLIC_URL: urls.pac, PAS_URL: urls.pas, ENTITLEMENT_URL: urls.entitlement, TOPIC_BASE_URL: urls.topic },
    topic: { ...common('topic'), AMQP_URL, PUBLIC_BASE_URL: urls.topic, PAC_URL: urls.pac, ENTITLEMENT_URL: urls.entitlement },
    audit: {
      ...common('audit'),
      PUBLIC_URL: urls.audit,
      PAS_URL: urls.pas,
      ENTITLEMENT_URL: urls.entitlement,
      TOPIC_URL: urls.topic,
      AUDIT_EXPORT_INTERVAL_MS: '200',
      AUDIT_CHECKPOINT_KEY_FILE: join(dir, 'audit-checkpoint.key'),
    },
    // ready only while its scanner answers
    releases: {
      ...common('releases'),
      PUBLIC_URL: urls.releases,
      PAS_URL: urls.pas,
      ENTITLEMENT_URL: urls.entitlement,
      RELEASES_STORAGE_DIR: join(dir, 'releases'),
      CLAMD_ADDRESS: options.clamdAddress,
      CLAMD_STREAM_MAX_LENGTH: '64M',
      IDP_URL: urls.idp,
      SFTP_PORT: String(sftpPort),
    },
  };
  return { env, urls, sftpPort };
}
