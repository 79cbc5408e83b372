import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { ensureDevKek } from '@keyway/seal';
import { schemaShape } from '@keyway/env';
import { TelemetryEnv } from '@keyway/telemetry';
import { createTestDatabase, SERVICES, type ServiceName, type TestDatabase, testPki } from '@keyway/testkit';
import { type ClamdServer, startClamdServer } from '@keyway/testkit/servers';
import type { DevPki } from '@keyway/tls';
import { AuditEnv } from '../../services/audit/src/config.ts';
import { EntitlementEnv } from '../../services/entitlement/src/config.ts';
import { IdpEnv } from '../../services/idp/src/config.ts';
import { ImporterEnv } from '../../services/importer/src/config.ts';
import { PacEnv } from '../../services/pac/src/config.ts';
import { PasEnv } from '../../services/pas/src/config.ts';
import { ReleasesEnv } from '../../services/releases/src/config.ts';
import { TopicEnv } from '../../services/topic/src/config.ts';
import { freePort, runService, stderrOf, stopAll, waitReady } from './processes.ts';

/**
 * What the Kubernetes and compose tests share: each service's zod schema (so manifests cannot drift
 * from code), its port (contract item 6) and the keys whose values are secrets.
 */

/** The keys of a schema, as parseConfig reads them (@keyway/env schemaShape). */
export const schemaKeys = (schema: z.ZodType): Set<string> => new Set(Object.keys(schemaShape(schema)));

export const SERVICE_SCHEMAS: Record<ServiceName, z.ZodType> = {
  idp: IdpEnv,
  entitlement: EntitlementEnv,
  pas: PasEnv,
  pac: PacEnv,
  topic: TopicEnv,
  audit: AuditEnv,
  releases: ReleasesEnv,
};
export type Service = ServiceName;
export { SERVICES };
export const IMPORTER_SCHEMA = ImporterEnv;

/** Each service's port (contract item 6): its schema's PORT default, so manifests and images follow the code. */
export const PORTS = Object.fromEntries(SERVICES.map((service) => [service, (schemaShape(SERVICE_SCHEMAS[service]).PORT as z.ZodType<number>).parse(undefined)])) as Record<Service, number>;

/** Contract item 6: the images are tagged with the root package.json version. */
export function imageTag(): string {
  return (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
}

/** Keys whose value is a secret: a manifest gives them only as X_FILE (contract item 3), never in clear. */
export const SECRET_KEYS = ['DATABASE_URL', 'REDIS_URL', 'AMQP_URL', 'METRICS_TOKEN', 'CRM_WEBHOOK_SECRET', 'KEYWAY_PASSWORD', 'HEC_TOKEN', 'SENTINEL_CLIENT_SECRET', 'ES_API_KEY', 'ES_PASSWORD'];

/**
 * Keys every process reads beside its service's schema: @keyway/telemetry's (METRICS_TOKEN, the OTEL_*
 * it checks), parsed before the service's config. The exporters read further OTEL_* keys themselves.
 */
const TELEMETRY_KEYS = schemaKeys(TelemetryEnv);

/**
 * Why `name` is not a key the schema knows, or undefined when it is: X_FILE stands for X (contract
 * item 3) unless X's own name ends in _FILE (then it is a path already); a variable that another one
 * of the same container uses as $(name) is Kubernetes' own composition (e.g. POD_NAME in INSTANCE_URL).
 */
export function unknownKey(name: string, known: Set<string>, composedFrom: Set<string> = new Set()): string | undefined {
  if (known.has(name) || TELEMETRY_KEYS.has(name) || name.startsWith('OTEL_') || composedFrom.has(name)) return undefined;
  const base = name.endsWith('_FILE') ? name.slice(0, -'_FILE'.length) : undefined;
  if (base && !base.endsWith('_FILE') && (known.has(base) || TELEMETRY_KEYS.has(base))) return undefined;
  return `${name} is not a key of the schema`;
}

/**
 * The OTEL_* settings a shipped file carries commented out (`# KEY=value` or `# KEY: value`), as a process
 * would see them once uncommented, and what @keyway/telemetry's schema says of them.
 */
export function commentedTelemetry(text: string): { keys: string[]; issues: string[] } {
  const block = Object.fromEntries([...text.matchAll(/^\s*# (OTEL_\w+)[=:] ?"?([^"\n]*?)"?$/gm)].map((m) => [m[1] as string, m[2] as string]));
  return { keys: Object.keys(block), issues: (TelemetryEnv.safeParse(block).error?.issues ?? []).map((issue) => `${issue.path.join('.')}: ${issue.message}`) };
}

/** A stand-in for a secret's value, of the shape the schema expects, to parse a manifest's settings whole. */
const SECRET_STAND_INS: Record<string, string> = {
  DATABASE_URL: 'postgres://keyway_service:secret@postgres:5432/keyway',
  REDIS_URL: 'redis://service:secret@redis:6379',
  AMQP_URL: 'amqp://keyway:secret@rabbitmq:5672/keyway',
  METRICS_TOKEN: 'secret',
  KEYWAY_PASSWORD: 'secret',
  HEC_TOKEN: 'secret',
};

/**
 * The environment a process would see, with each X_FILE of a secret key replaced by X set to a
 * stand-in (the schema in this branch may not read *_FILE yet; the file's content is what it parses).
 */
export function asParsed(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    const base = key.endsWith('_FILE') ? key.slice(0, -'_FILE'.length) : undefined;
    if (base && SECRET_STAND_INS[base] !== undefined) out[base] = SECRET_STAND_INS[base];
    else out[key] = value;
  }
  return out;
}

/** Where a deployment puts files a service reads: moved under a temporary directory when started here. */
const MOUNT_ROOTS = ['/etc/keyway/', '/run/secrets/', '/run/keyway/', '/var/lib/keyway/'];

interface Deployed {
  service: Service;
  /** the environment as deployed (paths as the container sees them) */
  env: Record<string, string>;
  /** the files as the container sees them: path → content (mode 0600) */
  files: Record<string, string>;
}

/**
 * Starts each service from its main.ts as deployed: its files written under `dir`/<service>/ at the
 * container's paths, and every setting naming such a path moved with them. `overrides` are the
 * settings that cannot be as deployed on one host (listener, addresses of what runs elsewhere).
 */
async function startDeployed(
  dir: string,
  deployed: Deployed[],
  overrides: (service: Service, url: string) => Record<string, string>,
): Promise<{ service: Service; url: string; child: ChildProcess }[]> {
  const started = [];
  for (const { service, env, files } of deployed) {
    const root = join(dir, service);
    const moved = (value: string) => (MOUNT_ROOTS.some((mount) => value.startsWith(mount)) ? join(root, value) : value);
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(dirname(moved(path)), { recursive: true });
      writeFileSync(moved(path), content, { mode: 0o600 });
    }
    for (const path of Object.values(env).filter((value) => MOUNT_ROOTS.some((mount) => value.startsWith(mount)))) mkdirSync(dirname(moved(path)), { recursive: true });
    const port = await freePort();
    const url = `https://localhost:${port}`;
    const final = { ...Object.fromEntries(Object.entries(env).map(([key, value]) => [key, moved(value)])), HOST: '127.0.0.1', PORT: String(port), ...overrides(service, url) };
    started.push({ service, url, child: runService(service, final) });
  }
  return started;
}

/** Waits for every /readyz: 'ready', or why not with the end of what the process wrote. */
async function readiness(started: { service: Service; url: string; child: ChildProcess }[], caPem: string, timeoutMs: number): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  const outcome: Record<string, string> = {};
  for (const { service, url, child } of started) {
    outcome[service] = await waitReady(service, url, caPem, deadline - Date.now(), child).then(
      () => 'ready',
      (err: Error) => `${err.message}: ${stderrOf(child, 600)}`,
    );
  }
  return outcome;
}

/** What every deployment's files are made of: the test PKI, a KEK, the audit checkpoint key, a database. */
export interface Fixture {
  pki: DevPki;
  kek: string;
  checkpointKey: string;
  database: TestDatabase;
}

/**
 * A deployment's settings for real: each service's process started with the environment and files
 * `deployedOf` says it gets (the mount paths moved under a temporary directory), on real PostgreSQL,
 * Redis, RabbitMQ and clamd. Only the listener (HOST, PORT), the scanner's address, the topic
 * instance's own URL, the store prefix and the log level differ.
 */
export function describeStarted(title: string, deployedOf: (fixture: Fixture) => Deployed[]): void {
  describe(title, () => {
    const children: ChildProcess[] = [];
    let database: TestDatabase | undefined;
    let clamd: ClamdServer | undefined;
    let dir: string | undefined;
    afterAll(async () => {
      await stopAll(children);
      await database?.drop();
      await clamd?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('makes every service ready', async () => {
      const pki = await testPki();
      dir = mkdtempSync(join(tmpdir(), 'keyway-deployed-'));
      [database, clamd] = await Promise.all([createTestDatabase(), startClamdServer()]);
      const kek = readFileSync(await ensureDevKek(join(dir, 'kek')), 'utf8');
      const checkpointKey = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const scanner = clamd.address;
      const prefix = `keyway-deployed-${Date.now()}`;
      const started = await startDeployed(dir, deployedOf({ pki, kek, checkpointKey, database }), (service, url) => ({
        STORE_PREFIX: prefix,
        LOG_LEVEL: 'warn',
        ...(service === 'releases' ? { CLAMD_ADDRESS: scanner } : {}),
        ...(service === 'topic' ? { INSTANCE_URL: url } : {}),
      }));
      children.push(...started.map((s) => s.child));
      // seven processes transpiling with tsx at once on a shared machine: tens of seconds
      expect(await readiness(started, pki.ca.certPem, 90_000)).toEqual(Object.fromEntries(SERVICES.map((service) => [service, 'ready'])));
    }, 150_000);
  });
}
