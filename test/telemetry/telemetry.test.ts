import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttp, entitlementClient, pacClient, pasClient, topicClient } from '@keyway/clients';
import { ensureDevKek } from '@keyway/seal';
import { AMQP_URL, createTestDatabase, deleteQueues, testPki, type TestDatabase } from '@keyway/testkit';
import { makeBatch, PASSWORD } from '../helpers.ts';
import { clearStorePrefix, exited, freePort, logLines, runService, serviceEnv, spawnKept, stderrOf, stopAll, waitReady, writePkiFiles } from '../deploy/processes.ts';
import { CLIENT, PRODUCER, type ReceivedSpan, SERVER, startOtlpReceiver } from './otlp-receiver.ts';

const CHAIN = ['idp', 'entitlement', 'pas', 'pac', 'topic'] as const;
type ChainService = (typeof CHAIN)[number];
const METRICS_TOKEN = 'scrape-me-please-0123456789';
const COLLECTOR_KEY = 'collector-key-from-a-file';

/** The value of every sample of `metric` whose labels contain each of `labels`, summed (0 when none). */
function sample(text: string, metric: string, labels: string[] = []): number {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${metric}{`) || line.startsWith(`${metric} `))
    .filter((line) => labels.every((label) => line.includes(label)))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** A port nothing listens on: a collector that refuses connections. */
async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('telemetry across service processes (OTLP traces, /metrics)', () => {
  const children: ChildProcess[] = [];
  const urls = {} as Record<ChainService, string>;
  const env = {} as Record<ChainService, Record<string, string>>;
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let dir: string;
  let caPem: string;
  let prefix: string;
  let database: TestDatabase;
  const tenant = `t-${Date.now().toString(36)}`;
  const email = `agent@${tenant}.example`;

  beforeAll(async () => {
    const pki = await testPki();
    caPem = pki.ca.certPem;
    dir = mkdtempSync(join(tmpdir(), 'keyway-telemetry-'));
    writePkiFiles(dir, pki);
    receiver = await startOtlpReceiver();
    // a collector's API key, given as a file as a deployment mounts it (one trailing newline, stripped)
    writeFileSync(join(dir, 'otlp-headers'), `x-collector-key=${COLLECTOR_KEY}\n`);
    for (const name of CHAIN) urls[name] = `https://localhost:${await freePort()}`;
    prefix = `keyway-telemetry-${Date.now()}`;
    database = await createTestDatabase();
    const kekFile = await ensureDevKek(dir);
    const common = (name: ChainService) => ({
      ...serviceEnv(name, { dir, database, prefix, port: new URL(urls[name]).port }),
      // the standard knobs: OTLP over HTTP/JSON to the in-test receiver, spans sent every 100 ms
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_EXPORTER_OTLP_HEADERS_FILE: join(dir, 'otlp-headers'),
      METRICS_TOKEN,
    });
    Object.assign(env, {
      idp: { ...common('idp'), KEYWAY_KEK_FILE: kekFile, PAS_URL: urls.pas, ENTITLEMENT_URL: urls.entitlement },
      entitlement: { ...common('entitlement'), AMQP_URL, PUBLIC_URL: urls.entitlement, IDP_URL: urls.idp, PAS_URL: urls.pas, PAC_URL: urls.pac, TOPIC_URL: urls.topic },
      pas: { ...common('pas'), AMQP_URL, KEYWAY_KEK_FILE: kekFile, PUBLIC_URL: urls.pas, ACCESS_AUDIENCE: urls.pac, IDP_URL: urls.idp, ENTITLEMENT_URL: urls.entitlement },
      pac: { ...common('pac'), AMQP_URL, KEYWAY_KEK_FILE: kekFile, PUBLIC_URL: urls.pac, PAS_URL: urls.pas, ENTITLEMENT_URL: urls.entitlement, TOPIC_BASE_URL: urls.topic },
      topic: { ...common('topic'), AMQP_URL, PUBLIC_BASE_URL: urls.topic, PAC_URL: urls.pac, ENTITLEMENT_URL: urls.entitlement },
    });
    for (const name of CHAIN) children.push(runService(name, env[name]));
    const deadline = Date.now() + 90_000;
    for (const [i, name] of CHAIN.entries()) await waitReady(name, urls[name], caPem, deadline - Date.now(), children[i]);

    const operator = entitlementClient({ baseUrl: urls.entitlement, caPem, clientCert: pki.certs.operator });
    await operator.createTenant({ id: tenant, name: 'Telemetry', feeds: ['edr-events'] });
    await operator.createUser(tenant, { email, password: PASSWORD, roles: ['full-control'] });
  }, 120_000);

  afterAll(async () => {
    await stopAll(children);
    await receiver?.close();
    await clearStorePrefix(prefix);
    await database?.drop();
    await deleteQueues(AMQP_URL, (name) => !name.startsWith(`keyway.sub.${tenant}.`));
  });

  it("one trace of an importer's login holds the spans of every service it crossed, linked parent to child across processes", async () => {
    // a batch waiting, published from here (no SDK in this process: its own traces, not the importer's)
    const { refresh_token } = await pasClient({ baseUrl: urls.pas, caPem }).password(email, PASSWORD);
    const { sas_key } = await pacClient({ baseUrl: urls.pac, caPem }).sas({ refresh_token, rights: 'listen-send' });
    const batch = makeBatch(tenant, 'edr-events', 1);
    await topicClient({ baseUrl: urls.topic, caPem }).publish(sas_key, batch);

    const sinkFile = join(dir, 'sink', 'batches.jsonl');
    const importer = spawnKept(process.execPath, ['--import', 'tsx', 'services/importer/src/main.ts'], {
      PAS_URL: urls.pas,
      PAC_URL: urls.pac,
      TOPIC_URL: urls.topic,
      TLS_CA_FILE: join(dir, 'ca.crt'),
      KEYWAY_USERNAME: email,
      KEYWAY_PASSWORD: PASSWORD,
      SINK: 'file',
      SINK_FILE: sinkFile,
      PULL: 'receive',
      RECEIVE_TIMEOUT_SEC: '1',
      LOG_LEVEL: 'warn',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_EXPORTER_OTLP_HEADERS_FILE: join(dir, 'otlp-headers'),
    });
    children.push(importer);

    // the trace of the importer's first receive: login at PAS, SAS key at PAC, the receive and complete at topic
    let trace: ReceivedSpan[] = [];
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline) {
      const roots = receiver.spans.filter((s) => s.service === 'importer' && s.name === 'importer.receive' && !s.parentSpanId);
      trace = roots.map((root) => receiver.spans.filter((s) => s.traceId === root.traceId)).find((spans) => CHAIN.every((name) => spans.some((s) => s.service === name))) ?? [];
      if (trace.length > 0 && existsSync(sinkFile) && readFileSync(sinkFile, 'utf8').includes(batch.id)) break;
      if (importer.exitCode !== null) throw new Error(`the importer exited: ${stderrOf(importer)}`);
      await sleep(200);
    }
    expect(new Set(trace.map((s) => s.service)), `services in the trace; importer: ${stderrOf(importer)}`).toEqual(new Set(['importer', ...CHAIN]));
    expect(readFileSync(sinkFile, 'utf8')).toContain(batch.id);

    const byId = new Map(trace.map((s) => [s.spanId, s]));
    /** server spans of `callee` whose parent is a client span of `caller`: the traceparent crossed the process boundary */
    const calls = (caller: string, callee: string) =>
      trace.filter((s) => s.service === callee && s.kind === SERVER && s.parentSpanId !== undefined && byId.get(s.parentSpanId)?.service === caller && byId.get(s.parentSpanId)?.kind === CLIENT);
    for (const [caller, callee] of [
      ['importer', 'pas'],
      ['pas', 'idp'],
      ['pas', 'entitlement'],
      ['importer', 'pac'],
      ['pac', 'pas'],
      ['importer', 'topic'],
      ['topic', 'pac'],
    ] as const) {
      expect(calls(caller, callee).length, `${caller} → ${callee} in ${JSON.stringify(trace.map((s) => [s.service, s.kind, s.name]))}`).toBeGreaterThan(0);
    }
    // every span but the importer's root hangs from a span of the same trace
    for (const span of trace.filter((s) => s.parentSpanId)) expect(byId.has(span.parentSpanId!), `parent of ${span.service} ${span.name}`).toBe(true);
    // the express route names the server span, so a trace reads as the API does
    expect(trace.some((s) => s.service === 'pas' && s.kind === SERVER && s.name === 'POST /oauth2/token')).toBe(true);
    // PostgreSQL and Redis calls are spans of the trace too
    expect(trace.some((s) => s.service === 'idp' && s.kind === CLIENT && s.name.startsWith('pg.query'))).toBe(true);
    expect(trace.some((s) => s.service === 'pas' && s.kind === CLIENT && /^(get|set|sadd|evalsha)$/i.test(s.name))).toBe(true);
    // and the publish (from this process, a trace of its own) holds the topic service's RabbitMQ publish
    const publish = receiver.spans.find((s) => s.service === 'topic' && s.kind === SERVER && s.name === 'POST /tenants/:tenant/topics/:topic/messages');
    expect(publish).toBeDefined();
    expect(receiver.spans.some((s) => s.traceId === publish!.traceId && s.service === 'topic' && s.kind === PRODUCER)).toBe(true);
    // OTEL_EXPORTER_OTLP_HEADERS_FILE reached every exporter: each post carried the key, newline stripped
    expect(receiver.collectorKeys).toEqual(new Set([COLLECTOR_KEY]));
  }, 60_000);

  it('GET /metrics: 401 without or with a wrong bearer token; with it, the route latency and the security counters moved after traffic', async () => {
    const http = createHttp({ baseUrl: urls.pas, caPem, timeoutMs: 5000 });
    const scrape = async () => {
      const answer = await http.get('/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` }, responseType: 'text' });
      expect(answer.status).toBe(200);
      expect(answer.headers['content-type']).toMatch(/^text\/plain;.*version=0\.0\.4/);
      return answer.data as string;
    };
    const none = await http.get('/metrics');
    expect(none.status).toBe(401);
    expect(none.data).toMatchObject({ error: 'invalid_token' });
    expect(none.headers['www-authenticate']).toContain('Bearer');
    expect((await http.get('/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } })).status).toBe(401);
    expect((await http.get('/metrics', { headers: { authorization: `Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString('base64')}` } })).status).toBe(401);

    const before = await scrape();
    const pas = pasClient({ baseUrl: urls.pas, caPem });
    await pas.password(email, PASSWORD);
    await expect(pas.password(email, 'not the password')).rejects.toThrow();

    /** requests to the token route answered with a status matching `status` */
    const count = (text: string, status: RegExp) =>
      text
        .split('\n')
        .filter((line) => line.startsWith('http_server_request_duration_count{') && line.includes('http_route="/oauth2/token"') && line.includes('http_request_method="POST"'))
        .filter((line) => status.test(/http_response_status_code="(\d+)"/.exec(line)?.[1] ?? ''))
        .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    const moved = (text: string, status: RegExp) => count(text, status) - count(before, status);
    // recorded when each answer has been handed to the socket: a scrape racing it is taken again
    let after = await scrape();
    for (let i = 0; i < 20 && (moved(after, /^200$/) < 1 || moved(after, /^4\d\d$/) < 1); i++) after = await sleep(100).then(scrape);
    expect(moved(after, /^200$/), after).toBe(1);
    expect(moved(after, /^4\d\d$/), after).toBe(1);
    expect(after).toMatch(/^http_server_request_duration_bucket\{.*http_route="\/oauth2\/token".*le="0.005"\}/m);
    // the routes are patterns: no tenant or id in a latency label (the security counters name the tenant by design)
    expect(after.split('\n').filter((line) => line.startsWith('http_server_request_duration') && line.includes(tenant))).toEqual([]);
    const issued = (text: string, outcome: string) => sample(text, 'keyway_tokens_issued_total', ['grant_type="password"', `outcome="${outcome}"`]);
    expect(issued(after, 'success') - issued(before, 'success')).toBe(1);
    expect(issued(after, 'denied') - issued(before, 'denied')).toBe(1);
  }, 30_000);

  it('on SIGTERM the spans still queued are sent before the process exits 0', async () => {
    const port = String(await freePort());
    // a batch sent only once a minute: what reaches the receiver was flushed at shutdown
    const pas = runService('pas', { ...env.pas, PORT: port, OTEL_SERVICE_NAME: 'pas-flush', OTEL_BSP_SCHEDULE_DELAY: '60000' });
    const url = `https://localhost:${port}`;
    await waitReady('pas (flush)', url, caPem, 60_000, pas);
    expect((await createHttp({ baseUrl: url, caPem, timeoutMs: 5000 }).get('/.well-known/openid-configuration')).status).toBe(200);
    const named = () => receiver.spans.filter((s) => s.service === 'pas-flush' && s.kind === SERVER && s.name === 'GET /.well-known/openid-configuration');
    await sleep(300);
    expect(named()).toHaveLength(0);
    const done = exited(pas);
    pas.kill('SIGTERM');
    expect((await done).code).toBe(0);
    expect(named()).toHaveLength(1);
  }, 90_000);

  it('a collector that refuses connections fails no request and slows none', async () => {
    const port = String(await freePort());
    const collector = `http://127.0.0.1:${await refusedPort()}`;
    const pas = runService('pas', { ...env.pas, PORT: port, LOG_LEVEL: 'info', OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_METRIC_EXPORT_INTERVAL: '100', OTEL_BSP_SCHEDULE_DELAY: '20' });
    children.push(pas);
    const url = `https://localhost:${port}`;
    await waitReady('pas (no collector)', url, caPem, 60_000, pas);
    const client = pasClient({ baseUrl: url, caPem });
    const slowest = { ms: 0 };
    for (let i = 0; i < 10; i++) {
      const started = Date.now();
      // PAS → IdP → entitlement: three services' spans exported to nobody
      await client.password(email, PASSWORD);
      slowest.ms = Math.max(slowest.ms, Date.now() - started);
    }
    // a login takes tens of ms here; an export in the request's path would wait for its 10 s timeout
    expect(slowest.ms).toBeLessThan(3000);
    await expect(client.password(email, 'not the password')).rejects.toThrow();
    // a line logged while a request's span is active names its trace and span (W3C hex ids)
    const refused = (logLines(pas) as { msg: string; trace_id?: string; span_id?: string }[]).find((line) => line.msg === 'request refused');
    expect(refused?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(refused?.span_id).toMatch(/^[0-9a-f]{16}$/);
    await sleep(500);
    expect(pas.exitCode).toBeNull();
    // the failed exports are debug diagnostics, not errors (OTEL_LOG_LEVEL=info by default)
    expect(stderrOf(pas)).not.toMatch(/"level":"error"/);
  }, 90_000);
});
