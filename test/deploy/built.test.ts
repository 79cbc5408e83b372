import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttp, pacClient, pasClient, topicClient } from '@keyway/clients';
import { AMQP_URL, createTestDatabase, deleteQueues, SERVICES, testPki, type ServiceName, type TestDatabase } from '@keyway/testkit';
import { startClamdServer, type ClamdServer } from '@keyway/testkit/servers';
import { makeBatch, PASSWORD } from '../helpers.ts';
import { CLIENT, type ReceivedSpan, SERVER, startOtlpReceiver } from '../telemetry/otlp-receiver.ts';
import { clearStorePrefix, exited, packInstall, productionEnvs, spawnKept, stderrOf, stopAll, waitReady, writePkiFiles } from './processes.ts';

const METRICS_TOKEN = 'scrape-the-built-0123456789';
/** the receiver keeps each span as OTLP/JSON sends it: its attributes too */
type Span = ReceivedSpan & { attributes?: { key: string; value: { stringValue?: string } }[] };
const attribute = (span: Span, key: string) => span.attributes?.find((a) => a.key === key)?.value.stringValue;

/**
 * `pnpm build`'s artifacts run as an operator runs them: built into a directory outside the repo (so
 * nothing resolves from the workspace's node_modules), each service started with plain `node` (no
 * tsx) on the real PostgreSQL, Redis and RabbitMQ; the packed CLI installed offline sets up a tenant,
 * and the one-file agent pulls a batch through them. Telemetry is on (OTLP/JSON to an in-test receiver,
 * /metrics): bundling is what can break the instrumentations' module hooks.
 */
describe('the built services, agent and CLI', () => {
  const children = new Map<ServiceName, ChildProcess>();
  let out: string;
  let dir: string;
  let caPem: string;
  let prefix: string;
  let database: TestDatabase;
  let clamd: ClamdServer;
  let urls: Record<ServiceName, string>;
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  /** the standard OTel knobs: OTLP over HTTP/JSON to the receiver, spans sent every 100 ms */
  const otel = () => ({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100' });
  const tenant = `b-${Date.now().toString(36)}`;

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'keyway-built-'));
    const build = spawnSync(process.execPath, ['--import', 'tsx', 'deploy/build/build.ts', '--out', out], { encoding: 'utf8' });
    expect(build.status, build.stderr).toBe(0);
    dir = mkdtempSync(join(tmpdir(), 'keyway-built-run-'));
    const pki = await testPki();
    caPem = pki.ca.certPem;
    writePkiFiles(dir, pki);
    prefix = `keyway-built-${Date.now()}`;
    [database, clamd, receiver] = await Promise.all([createTestDatabase(), startClamdServer(), startOtlpReceiver()]);
    const production = await productionEnvs({ dir, database, prefix, clamdAddress: clamd.address });
    urls = production.urls;
    for (const name of SERVICES) children.set(name, spawnKept(process.execPath, [join(out, 'services', name, 'main.mjs')], { ...production.env[name], ...otel(), METRICS_TOKEN }));
    // no transpiling at start: far quicker than the tsx processes of standalone.test.ts
    const deadline = Date.now() + 60_000;
    for (const name of SERVICES) await waitReady(name, urls[name], caPem, deadline - Date.now(), children.get(name));
  }, 150_000);

  afterAll(async () => {
    await stopAll(children.values());
    await clearStorePrefix(prefix);
    await database?.drop();
    await clamd?.stop();
    await receiver?.close();
    await deleteQueues(AMQP_URL, (name) => !name.startsWith(`keyway.sub.${tenant}.`));
    for (const path of [out, dir]) if (path) rmSync(path, { recursive: true, force: true });
  });

  it('lays out each service as main.mjs with its own node_modules, the agent as one file', () => {
    // nothing above the output directory that Node's resolution could fall back to
    for (let at = dirname(out); at !== dirname(at); at = dirname(at)) expect(existsSync(join(at, 'node_modules')), at).toBe(false);
    for (const name of SERVICES) {
      const files = readdirSync(join(out, 'services', name));
      expect(files).toContain('main.mjs');
      expect(files).toContain('node_modules');
      // no TypeScript, and no tsx to run it with
      expect(files.filter((file) => file.endsWith('.ts'))).toEqual([]);
      expect(existsSync(join(out, 'services', name, 'node_modules', 'tsx'))).toBe(false);
    }
    expect(readdirSync(join(out, 'agent')).sort()).toEqual(['keyway-importer.mjs', 'package.json']);
    expect(readFileSync(join(out, 'services/pas/files/packages/db/migrations/0001_service_roles.sql'), 'utf8')).toContain('CREATE');
    // the marker that lets a later build empty this directory
    expect(existsSync(join(out, '.keyway-build'))).toBe(true);
  });

  it('refuses to empty an --out directory that holds anything but an earlier build (exit 2, nothing removed)', () => {
    const home = mkdtempSync(join(tmpdir(), 'keyway-not-a-build-'));
    writeFileSync(join(home, '.bashrc'), 'keep me\n');
    const build = spawnSync(process.execPath, ['--import', 'tsx', 'deploy/build/build.ts', '--out', home], { encoding: 'utf8' });
    expect(build.status, build.stderr).toBe(2);
    expect(build.stderr).toContain('.keyway-build');
    expect(readdirSync(home)).toEqual(['.bashrc']);
    rmSync(home, { recursive: true, force: true });
  });

  it('installs the packed CLI offline; it reads its migrations, sets up a tenant, and the one-file agent pulls a batch through the built services', async () => {
    const prefixDir = mkdtempSync(join(tmpdir(), 'keyway-npm-'));
    const bin = packInstall(join(out, 'cli'), prefixDir);
    const keyway = (args: string[], input?: string) =>
      spawnSync(join(bin, 'keyway'), ['--ca-file', join(dir, 'ca.crt'), '--cert', join(dir, 'operator.crt'), '--key', join(dir, 'operator.key'), '--entitlement-url', urls.entitlement, ...args], {
        encoding: 'utf8',
        input,
        env: { PATH: process.env.PATH, HOME: prefixDir },
      });
    const help = spawnSync(join(bin, 'keyway'), ['--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: keyway');
    // the migrations travel in the package: every one of them is applied on the suite's database
    const status = keyway(['db', 'status', '--database-url', database.adminUrl]);
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^applied +0001_service_roles$/m);
    expect(status.stdout).not.toContain('pending');
    const created = keyway(['tenant', 'create', tenant, '--feed', 'edr-events']);
    expect(created.status, created.stderr).toBe(0);
    const user = keyway(['user', 'add', tenant, `agent@${tenant}.example`, '--role', 'full-control', '--with-password'], `${PASSWORD}\n`);
    expect(user.status, user.stderr).toBe(0);

    const tokens = await pasClient({ baseUrl: urls.pas, caPem }).password(`agent@${tenant}.example`, PASSWORD);
    const sas = await pacClient({ baseUrl: urls.pac, caPem }).sas({ refresh_token: tokens.refresh_token, rights: 'send' });
    const batch = makeBatch(tenant, 'edr-events', 1);
    await topicClient({ baseUrl: urls.topic, caPem }).publish(sas.sas_key, batch);

    const sink = join(prefixDir, 'state', 'batches.jsonl');
    const agent = spawnKept(process.execPath, [join(out, 'agent/keyway-importer.mjs')], {
      PAS_URL: urls.pas,
      PAC_URL: urls.pac,
      TOPIC_URL: urls.topic,
      TLS_CA_FILE: join(dir, 'ca.crt'),
      KEYWAY_USERNAME: `agent@${tenant}.example`,
      KEYWAY_PASSWORD: PASSWORD,
      SINK_FILE: sink,
      LOG_LEVEL: 'warn',
      ...otel(),
    });
    const done = exited(agent);
    const deadline = Date.now() + 20_000;
    while (!(existsSync(sink) && readFileSync(sink, 'utf8').includes(batch.id)) && agent.exitCode === null && Date.now() < deadline) await sleep(200);
    expect(existsSync(sink) && readFileSync(sink, 'utf8'), stderrOf(agent)).toContain(batch.id);
    agent.kill('SIGTERM');
    expect((await done).code).toBe(0);
    rmSync(prefixDir, { recursive: true, force: true });
  }, 60_000);

  it('the agent file and the installed agent package refuse to start without configuration (exit 78, naming the keys)', async () => {
    const refused = await exited(spawnKept(process.execPath, [join(out, 'agent/keyway-importer.mjs')], {}));
    expect(refused.code).toBe(78);
    for (const key of ['PAS_URL', 'PAC_URL', 'TOPIC_URL', 'TLS_CA_FILE']) expect(refused.stderr).toContain(key);
    const prefixDir = mkdtempSync(join(tmpdir(), 'keyway-npm-'));
    const installed = await exited(spawnKept(join(packInstall(join(out, 'agent'), prefixDir), 'keyway-importer'), [], {}));
    expect(installed.code).toBe(78);
    expect(installed.stderr).toContain('PAS_URL');
    rmSync(prefixDir, { recursive: true, force: true });
  });

  it("the built services' and the agent's spans reach the collector: express routes, PostgreSQL and Redis calls, the agent's calls as parents; /metrics answers", async () => {
    const spans = receiver.spans as Span[];
    /** PAS's server span of the agent's login, its parent the agent's client span: the traceparent crossed */
    const loginFromAgent = () =>
      spans.find(
        (s) =>
          s.service === 'pas' &&
          s.kind === SERVER &&
          s.name === 'POST /oauth2/token' &&
          spans.some((parent) => parent.spanId === s.parentSpanId && parent.service === 'importer' && parent.kind === CLIENT),
      );
    const deadline = Date.now() + 10_000;
    while (!loginFromAgent() && Date.now() < deadline) await sleep(200);
    const seen = () => JSON.stringify([...new Set(spans.map((s) => `${s.service} ${s.kind} ${s.name}`))]);
    // instrumentation-express: the route pattern on PAS's spans
    expect(
      spans.some((s) => s.service === 'pas' && attribute(s, 'http.route') === '/oauth2/token'),
      seen(),
    ).toBe(true);
    // instrumentation-pg and instrumentation-ioredis, loaded from the service's node_modules through import-in-the-middle
    expect(
      spans.some((s) => s.service === 'pas' && s.kind === CLIENT && s.name.startsWith('pg.')),
      seen(),
    ).toBe(true);
    expect(
      spans.some((s) => s.service === 'pas' && s.kind === CLIENT && attribute(s, 'db.system.name') === 'redis'),
      seen(),
    ).toBe(true);
    // the one-file agent's https is patched: its calls carry a traceparent
    expect(loginFromAgent(), seen()).toBeDefined();

    const metrics = await createHttp({ baseUrl: urls.pas, caPem, timeoutMs: 5000 }).get('/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` }, responseType: 'text' });
    expect(metrics.status).toBe(200);
    // the exporter's name for http.server.request.duration (seconds, as telemetry.test.ts reads it): the agent's logins counted
    expect(metrics.data as string).toMatch(/^http_server_request_duration_count\{http_request_method="POST",http_response_status_code="200",http_route="\/oauth2\/token".*\} [1-9]/m);
  }, 30_000);

  it('each built service stops on SIGTERM with exit code 0', async () => {
    const results = await Promise.all(
      [...children.entries()].map(async ([name, child]) => {
        const done = exited(child);
        child.kill('SIGTERM');
        return [name, (await done).code] as const;
      }),
    );
    expect(Object.fromEntries(results)).toEqual(Object.fromEntries(SERVICES.map((name) => [name, 0])));
  }, 60_000);
});
