import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDevKek } from '@keyway/seal';
import { AMQP_URL, createTestDatabase, REDIS_URL, SERVICES, testPki, type ServiceName, type TestDatabase } from '@keyway/testkit';
import { imageTag, PORTS } from './manifests.ts';
import { clearStorePrefix, exited, freePort, spawnKept, waitReady } from './processes.ts';

/**
 * deploy/containers/build.sh builds every image from a fresh `pnpm build` (into a directory of this test's own),
 * and podman runs them as an operator would: the topic service on podman's bridge network with its port published
 * (KEYWAY_ENV=development), and PAS in production on the real PostgreSQL, Redis and RabbitMQ (host network: they
 * listen on this machine's loopback), each to /readyz 200 and then SIGTERM and exit 0; every other image as far
 * as its program's configuration check, and the CLI's migration.
 */

const IMAGE_USER = 65532;
const VERSION = imageTag();
const IMAGES = [...SERVICES.map((name) => `keyway-${name}`), 'keyway-importer', 'keyway-cli'];
/** containers this run starts, removed at the end whatever happened */
const NAME = `keyway-images-test-${process.pid}`;

/** Runs `command` to its end (with only PATH and the run's TMPDIR inherited), without blocking the worker: a synchronous minute-long build starves vitest's RPC. */
const exec = (command: string, args: string[]) => exited(spawnKept(command, args, { TMPDIR: tmpdir() }));
const podman = (args: string[]) => exec('podman', args);

/** the hard limit of `name` in this process's /proc/self/limits, which podman inherits */
function hardLimit(name: string): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(name));
  return Number(line!.slice(name.length).trim().split(/\s+/)[1]);
}

/**
 * How `podman run` starts a container here (docs/deploy/containers.md): runc, because crun refuses cgroup v1
 * with a controller on the v2 hierarchy (hybrid mode); and explicit limits, because rootful podman asks for
 * RLIMIT_NOFILE and RLIMIT_NPROC of 1048576, which a root without CAP_SYS_RESOURCE cannot raise its hard limits to.
 * Then as the Kubernetes manifests run them: read-only root file system, no capabilities, no privilege escalation.
 */
const RUN_FLAGS = [
  ...['--runtime', 'runc', '--ulimit', `nofile=${hardLimit('Max open files')}:${hardLimit('Max open files')}`, '--ulimit', 'nproc=8192:8192'],
  ...['--read-only', '--cap-drop', 'all', '--security-opt', 'no-new-privileges'],
];

/** Files for a mount, owned by the image's user as a Kubernetes Secret with fsGroup makes them readable (keys 0600). */
function mountDir(dir: string, files: Record<string, string>): string {
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), content, { mode: 0o600 });
    chownSync(join(dir, name), IMAGE_USER, IMAGE_USER);
  }
  return dir;
}

/** Waits for /readyz 200 through `url`, then stops the container with `podman stop` (the image's STOPSIGNAL) and answers its exit code and log. */
async function readyThenStopped(container: string, url: string, caPem: string): Promise<{ exitCode: string; log: string }> {
  const log = async () => {
    const logs = await podman(['logs', container]);
    return logs.stdout + logs.stderr;
  };
  try {
    await waitReady(container, url, caPem, 60_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await log()}`);
  }
  // the process runs as the image's user, not root
  expect((await podman(['top', container, 'huser'])).stdout.trim().split('\n').slice(1)).toEqual([String(IMAGE_USER)]);
  const stopped = await podman(['stop', '--time', '40', container]);
  expect(stopped.code, stopped.stderr).toBe(0);
  return { exitCode: (await podman(['inspect', '--format', '{{.State.ExitCode}}', container])).stdout.trim(), log: await log() };
}

describe('container images (deploy/containers)', () => {
  let out: string;
  let dir: string;
  let caPem: string;
  let database: TestDatabase;
  const prefix = `keyway-images-${Date.now()}`;

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'keyway-images-dist-'));
    dir = mkdtempSync(join(tmpdir(), 'keyway-images-run-'));
    const built = await exec(process.execPath, ['--import', 'tsx', 'deploy/build/build.ts', '--out', out]);
    expect(built.code, built.stderr).toBe(0);
    const images = await exec('bash', ['deploy/containers/build.sh', out]);
    expect(images.code, images.stderr).toBe(0);
    caPem = (await testPki()).ca.certPem;
    database = await createTestDatabase();
  }, 600_000);

  afterAll(async () => {
    await podman(['rm', '--force', '--ignore', `${NAME}-topic`, `${NAME}-pas`]);
    await clearStorePrefix(prefix);
    await database?.drop();
    for (const path of [out, dir]) if (path) rmSync(path, { recursive: true, force: true });
  });

  it('builds one image per service, the importer and the CLI: non-root, STOPSIGNAL SIGTERM, the service port exposed, on one shared runtime', async () => {
    const layers: string[][] = [];
    for (const image of IMAGES) {
      const inspected = await podman(['image', 'inspect', `localhost/${image}:${VERSION}`]);
      expect(inspected.code, `${image}: ${inspected.stderr}`).toBe(0);
      const [{ Config, RootFS }] = JSON.parse(inspected.stdout) as [{ Config: { User: string; StopSignal: string; ExposedPorts?: Record<string, object> }; RootFS: { Layers: string[] } }];
      expect(Config.User).toBe(`${IMAGE_USER}:${IMAGE_USER}`);
      expect(Config.StopSignal).toBe('SIGTERM');
      const service = image.slice('keyway-'.length) as ServiceName;
      expect(Object.keys(Config.ExposedPorts ?? {})).toEqual(service in PORTS ? [`${PORTS[service]}/tcp`] : []);
      layers.push(RootFS.Layers);
    }
    // the state tree holds the directories compose mounts volumes at, the user's own: Docker copies owner and mode
    // into a new volume (one at a path the image lacks would be root's)
    const state = await podman([
      ...['run', '--rm', ...RUN_FLAGS, '--entrypoint', '/usr/bin/node', `localhost/keyway-cli:${VERSION}`],
      ...['-e', "for (const d of ['releases', 'importer', 'cli']) { const s = require('fs').statSync('/var/lib/keyway/' + d); console.log(d, s.uid, s.gid, (s.mode & 0o777).toString(8)); }"],
    ]);
    expect(state.code, state.stderr).toBe(0);
    expect(state.stdout.trim().split('\n')).toEqual(['releases', 'importer', 'cli'].map((d) => `${d} ${IMAGE_USER} ${IMAGE_USER} 700`));
    // the runtime's two layers (node and its libraries, the state directory) are the same in all: stored once
    for (const each of layers) expect(each.slice(0, 2)).toEqual(layers[0]!.slice(0, 2));
    expect(new Set(layers.map((each) => each.at(-1))).size).toBe(IMAGES.length);
  });

  it('starts the topic image on the bridge network with its port published: /readyz 200, then SIGTERM and exit 0', async () => {
    const tls = (await testPki()).certs.topic!;
    const tlsDir = mountDir(join(dir, 'topic-tls'), { 'tls.crt': tls.certPem, 'tls.key': tls.keyPem, 'ca.crt': caPem });
    const port = await freePort();
    const container = `${NAME}-topic`;
    const started = await podman([
      'run',
      '--detach',
      '--name',
      container,
      ...RUN_FLAGS,
      '--publish',
      `127.0.0.1:${port}:${PORTS.topic}`,
      '--volume',
      `${tlsDir}:/etc/keyway/tls:ro`,
      '--env',
      'KEYWAY_ENV=development',
      '--env',
      `PUBLIC_BASE_URL=https://localhost:${port}`,
      '--env',
      'PAC_URL=https://pac.invalid',
      '--env',
      'ENTITLEMENT_URL=https://entitlement.invalid',
      `localhost/keyway-topic:${VERSION}`,
    ]);
    expect(started.code, started.stderr).toBe(0);
    const { exitCode, log } = await readyThenStopped(container, `https://localhost:${port}`, caPem);
    expect(exitCode).toBe('0');
    expect(log).toContain('"signal":"SIGTERM"');
  }, 120_000);

  it('starts the PAS image in production on PostgreSQL, Redis and RabbitMQ, its URLs and keyring mounted secret files: /readyz 200, then SIGTERM and exit 0', async () => {
    const pki = await testPki();
    const tlsDir = mountDir(join(dir, 'pas-tls'), { 'tls.crt': pki.certs.pas!.certPem, 'tls.key': pki.certs.pas!.keyPem, 'ca.crt': caPem });
    const kek = readFileSync(await ensureDevKek(mkdtempSync(join(dir, 'kek-'))), 'utf8');
    // secrets as files (contract item 3), as a Kubernetes Secret or compose secret mounts them
    const secretsDir = mountDir(join(dir, 'pas-secrets'), {
      'kek.json': kek,
      'database-url': `${database.serviceUrl('pas')}\n`,
      'redis-url': `${REDIS_URL}\n`,
      'amqp-url': `${AMQP_URL}\n`,
    });
    const port = await freePort();
    const url = `https://localhost:${port}`;
    const container = `${NAME}-pas`;
    const env = {
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL_FILE: '/run/secrets/keyway/database-url',
      REDIS_URL_FILE: '/run/secrets/keyway/redis-url',
      AMQP_URL_FILE: '/run/secrets/keyway/amqp-url',
      STORE_PREFIX: prefix,
      KEYWAY_KEK_FILE: '/run/secrets/keyway/kek.json',
      PUBLIC_URL: url,
      ACCESS_AUDIENCE: 'https://pac.invalid',
      IDP_URL: 'https://idp.invalid',
      ENTITLEMENT_URL: 'https://entitlement.invalid',
    };
    const started = await podman([
      'run',
      '--detach',
      '--name',
      container,
      ...RUN_FLAGS,
      '--network',
      'host',
      '--volume',
      `${tlsDir}:/etc/keyway/tls:ro`,
      '--volume',
      `${secretsDir}:/run/secrets/keyway:ro`,
      ...Object.entries(env).flatMap(([key, value]) => ['--env', `${key}=${value}`]),
      `localhost/keyway-pas:${VERSION}`,
    ]);
    expect(started.code, started.stderr).toBe(0);
    const { exitCode, log } = await readyThenStopped(container, url, caPem);
    expect(exitCode).toBe('0');
    expect(log).toContain('"signal":"SIGTERM"');
  }, 120_000);

  it('starts the program of every other image: the services and the agent refuse an empty configuration (exit 78, the TLS paths preset), the CLI runs the migration Job', async () => {
    const missing: Record<string, string> = { idp: 'DATABASE_URL', entitlement: 'PUBLIC_URL', pac: 'PUBLIC_URL', audit: 'AUDIT_CHECKPOINT_KEY_FILE', releases: 'CLAMD_ADDRESS', importer: 'PAS_URL' };
    for (const [name, key] of Object.entries(missing)) {
      const run = await podman(['run', '--rm', ...RUN_FLAGS, `localhost/keyway-${name}:${VERSION}`]);
      expect(run.code, `${name}: ${run.stderr}`).toBe(78);
      expect(run.stderr).toContain(`- ${key}:`);
      expect(run.stderr).not.toMatch(/- TLS_\w+:/);
    }
    // deploy/kubernetes' migration Job: `keyway db migrate` from the image, reading its migrations from /opt/keyway/files
    const migrated = await podman(['run', '--rm', ...RUN_FLAGS, '--network', 'host', `localhost/keyway-cli:${VERSION}`, 'db', 'migrate', '--database-url', database.adminUrl]);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toContain('The database schema is up to date.');
  }, 120_000);
});
