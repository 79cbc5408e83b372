import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, createHttp, entitlementClient, pacClient, pasClient, topicClient, UnreachableError } from '@keyway/clients';
import { ensureDevKek } from '@keyway/seal';
import { createRedisStore } from '@keyway/store';
import { AMQP_URL, createTestDatabase, deleteQueues, REDIS_URL, testPki, type TestDatabase } from '@keyway/testkit';
import type { DevPki } from '@keyway/tls';
import { makeBatch } from '../helpers.ts';
import { deliveryRig, holdsAcceptedAfter, timeline, type Rig, type RigServices, expectEveryAcceptedDelivered } from '../delivery/delivery-rig.ts';
import { exited, freePort, runService, spawnKept, stderrOf, stdoutOf, waitReady, writePkiFiles } from './processes.ts';

/**
 * Several instances of PAS, PAC and the topic service, each its own OS process, behind HAProxy in TCP
 * mode with TLS passthrough (so a caller's client certificate still reaches the service), sharing the
 * machine's PostgreSQL, Redis and RabbitMQ; one topic instance is SIGKILLed mid-traffic and another
 * started in its place. Clients (the importer agent, producers, the services themselves) only know the
 * load balancer's URLs, `https://localhost:<port>`, which the service certificates name.
 */

/** PAS, PAC and the topic service run behind the load balancer; topic4 is the replacement, down until started. */
const BALANCED = { pas: ['pas1', 'pas2'], pac: ['pac1', 'pac2'], topic: ['topic1', 'topic2', 'topic3', 'topic4'] } as const;
type Balanced = keyof typeof BALANCED;
const STARTED_FIRST = ['pas1', 'pas2', 'pac1', 'pac2', 'topic1', 'topic2', 'topic3'];
/** Locked batches of a killed instance (and, until locks settle across instances, a complete that lands on another one) come back after this. */
const LOCK_DURATION_SEC = 2;

function haproxyConfig(frontends: Record<Balanced, number>, instancePorts: Record<string, number>, socket: string): string {
  const lines = [
    'global',
    '  nbthread 1',
    `  stats socket ${socket} mode 600 level admin`,
    '  log stdout format raw local0',
    'defaults',
    '  mode tcp',
    '  log global',
    '  option tcplog',
    '  timeout connect 2s',
    // longer than a long poll (75 s client timeout) and a stream's heartbeat gap
    '  timeout client 120s',
    '  timeout server 120s',
    // a connection to an instance that died before the checks saw it goes to another one
    '  retries 3',
    '  option redispatch',
    // An instance takes connections once its /readyz answers 200 (checked over TLS, without a client
    // certificate), and is taken out after two failed checks: one slow answer on a loaded machine must
    // not take every instance out at once (HAProxy then cuts new connections). Until the checks see a
    // dead instance, a connection it refuses goes to another one (retries, redispatch).
    '  option httpchk',
    '  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost',
    '  http-check expect status 200',
    '  timeout check 3s',
    '  default-server check check-ssl verify none inter 1s fall 2 rise 1',
  ];
  for (const service of Object.keys(BALANCED) as Balanced[]) {
    lines.push(`frontend ${service}`, `  bind 127.0.0.1:${frontends[service]}`, `  default_backend ${service}-instances`);
    lines.push(`backend ${service}-instances`, '  balance roundrobin');
    for (const name of BALANCED[service]) lines.push(`  server ${name} 127.0.0.1:${instancePorts[name]}`);
  }
  return `${lines.join('\n')}\n`;
}

/** One command on HAProxy's runtime API (its stats socket), answered as text. */
const haproxyCommand = (socket: string, command: string) =>
  new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const connection = createConnection(socket, () => connection.end(`${command}\n`));
    connection.on('data', (d: Buffer) => chunks.push(d));
    connection.on('end', () => resolve(Buffer.concat(chunks).toString()));
    connection.on('error', reject);
  });

/** Per instance: its check status (UP, DOWN, ...) and the connections it was handed, from `show stat`. */
async function instanceStats(socket: string): Promise<Record<string, { status: string; sessions: number }>> {
  const [header = '', ...rows] = (await haproxyCommand(socket, 'show stat')).trim().split('\n');
  const columns = header.replace(/^# /, '').split(',');
  const at = (row: string[], column: string) => row[columns.indexOf(column)] ?? '';
  const stats: Record<string, { status: string; sessions: number }> = {};
  for (const row of rows.map((line) => line.split(','))) {
    const name = at(row, 'svname');
    if (name === 'FRONTEND' || name === 'BACKEND') continue;
    stats[name] = { status: at(row, 'status'), sessions: Number(at(row, 'stot')) };
  }
  return stats;
}

/** Stops a child: SIGTERM, then SIGKILL when it is still there after `graceMs`. */
async function stop(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

describe('several instances behind HAProxy (TLS passthrough), one topic instance killed mid-traffic', () => {
  const children = new Map<string, ChildProcess>();
  let haproxy: ChildProcess | undefined;
  let dir: string;
  let socket: string;
  let pki: DevPki;
  let database: TestDatabase | undefined;
  let rig: Rig | undefined;
  const prefix = `keyway-multi-${Date.now()}`;
  const instancePorts: Record<string, number> = {};
  const lb = {} as Record<Balanced, string>;
  let env: (name: string) => { service: string; env: Record<string, string> };

  const start = (name: string) => {
    const { service, env: vars } = env(name);
    children.set(name, runService(service, vars));
  };

  beforeAll(async () => {
    const stage = timeline('multi-instance');
    pki = await testPki();
    dir = mkdtempSync(join(tmpdir(), 'keyway-multi-'));
    writePkiFiles(dir, pki);
    const kekFile = await ensureDevKek(dir);
    database = await createTestDatabase();
    socket = join(dir, 'haproxy.sock');

    for (const name of ['idp', 'entitlement', ...Object.values(BALANCED).flat()]) instancePorts[name] = await freePort();
    const frontends = {} as Record<Balanced, number>;
    for (const service of Object.keys(BALANCED) as Balanced[]) {
      frontends[service] = await freePort();
      lb[service] = `https://localhost:${frontends[service]}`;
    }
    const idpUrl = `https://localhost:${instancePorts.idp}`;
    const entitlementUrl = `https://localhost:${instancePorts.entitlement}`;

    const configFile = join(dir, 'haproxy.cfg');
    writeFileSync(configFile, haproxyConfig(frontends, instancePorts, socket));
    // -db: in the foreground, so its PID is the one to stop
    haproxy = spawnKept('haproxy', ['-db', '-f', configFile], {});

    env = (name) => {
      const service = name.replace(/\d+$/, '');
      const common = {
        PORT: String(instancePorts[name]),
        TLS_CERT_FILE: join(dir, `${service}.crt`),
        TLS_KEY_FILE: join(dir, `${service}.key`),
        TLS_CA_FILE: join(dir, 'ca.crt'),
        REDIS_URL,
        DATABASE_URL: database!.serviceUrl(service),
        LOG_LEVEL: 'warn',
        STORE_PREFIX: prefix,
      };
      // Every instance names the others by the load balancer's URL, never by an instance's own.
      const vars: Record<string, Record<string, string>> = {
        idp: { ...common, KEYWAY_KEK_FILE: kekFile, PAS_URL: lb.pas, ENTITLEMENT_URL: entitlementUrl },
        entitlement: { ...common, AMQP_URL, PUBLIC_URL: entitlementUrl, IDP_URL: idpUrl, PAS_URL: lb.pas, PAC_URL: lb.pac, TOPIC_URL: lb.topic },
        pas: { ...common, AMQP_URL, KEYWAY_KEK_FILE: kekFile, PUBLIC_URL: lb.pas, ACCESS_AUDIENCE: lb.pac, IDP_URL: idpUrl, ENTITLEMENT_URL: entitlementUrl },
        pac: { ...common, AMQP_URL, KEYWAY_KEK_FILE: kekFile, PUBLIC_URL: lb.pac, PAS_URL: lb.pas, ENTITLEMENT_URL: entitlementUrl, TOPIC_BASE_URL: lb.topic },
        topic: {
          ...common,
          AMQP_URL,
          PUBLIC_BASE_URL: lb.topic,
          PAC_URL: lb.pac,
          ENTITLEMENT_URL: entitlementUrl,
          LOCK_DURATION_SEC: String(LOCK_DURATION_SEC),
          SUBSCRIPTION_CACHE_SEC: '1',
          // where another instance reaches this one to settle a lock it holds (cross-instance locks)
          INSTANCE_URL: `https://127.0.0.1:${instancePorts[name]}`,
        },
      };
      return { service, env: vars[service]! };
    };
    for (const name of ['idp', 'entitlement', ...STARTED_FIRST]) start(name);
    // nine processes each transpiling with tsx on a shared two-core machine: a minute or more under load
    const deadline = Date.now() + 150_000;
    for (const name of ['idp', 'entitlement', ...STARTED_FIRST]) await waitReady(name, `https://localhost:${instancePorts[name]}`, pki.ca.certPem, deadline - Date.now(), children.get(name));
    for (const service of Object.keys(BALANCED) as Balanced[]) await waitReady(`${service} behind HAProxy`, lb[service], pki.ca.certPem, 10_000, haproxy);
    stage('HAProxy and nine service processes ready');
  }, 180_000);

  afterAll(async () => {
    await rig?.stopAgent().catch(() => undefined);
    await Promise.all([...children.values()].map((child) => stop(child)));
    if (haproxy) await stop(haproxy);
    const store = await createRedisStore({ url: REDIS_URL, prefix: `${prefix}:` });
    const keys = await store.keys('');
    if (keys.length > 0) await store.del(...keys);
    await store.close();
    await database?.drop();
    if (rig) {
      const { tenant } = rig;
      await deleteQueues(AMQP_URL, (name) => !name.startsWith(`keyway.sub.${tenant}.`));
      rmSync(dirname(rig.sinkFile), { recursive: true, force: true });
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('every accepted batch reaches the importer while a topic instance is SIGKILLed and another started', async () => {
    const stage = timeline('multi-instance');
    const caPem = pki.ca.certPem;
    const services: RigServices = {
      pki,
      urls: { topic: lb.topic },
      // the admin API of the (single) entitlement service, with the operator's certificate
      operator: entitlementClient({ caPem, clientCert: pki.certs.operator, baseUrl: `https://localhost:${instancePorts.entitlement}` }),
      pas: pasClient({ caPem, baseUrl: lb.pas }),
      pac: pacClient({ caPem, baseUrl: lb.pac }),
      topic: topicClient({ caPem, baseUrl: lb.topic }),
    };
    rig = await deliveryRig(services);
    // HAProxy logs every connection (instance chosen, bytes, how it ended) and every check that changed an instance's state
    const context = () => `${rig!.outcomes.toString()}\nagent: ${rig!.agentLog.join('\n       ')}\nhaproxy: ${stdoutOf(haproxy!)}`;
    rig.agent.start();
    const producer = rig.produce({ workers: 3 });
    try {
      expect(await rig.waitForSink((ids) => ids.length >= 30, 45_000), `the importer never got going; ${context()}`).toBe(true);
      stage(`sink holds ${rig.sinkIds().length}; SIGKILL topic1`);
      const killed = children.get('topic1')!;
      const gone = exited(killed);
      killed.kill('SIGKILL');
      await gone;
      const acceptedAtKill = producer.published.length;
      start('topic4');
      await waitReady('topic4', `https://localhost:${instancePorts.topic4}`, caPem, 60_000, children.get('topic4'));
      // HAProxy's checks see it up and topic1 down
      const deadline = Date.now() + 15_000;
      let stats = await instanceStats(socket);
      while (stats.topic4?.status !== 'UP' && Date.now() < deadline) {
        await sleep(200);
        stats = await instanceStats(socket);
      }
      expect(stats.topic4?.status, JSON.stringify(stats)).toBe('UP');
      expect(stats.topic1?.status).toMatch(/^DOWN/);
      stage('topic4 up behind HAProxy');
      // Connections opened from now on are spread over topic2, topic3 and topic4 (round robin): a few
      // producers on fresh connections, whose batches count as accepted ones too.
      for (let i = 0; i < 6; i++) {
        const fresh = topicClient({ caPem, baseUrl: lb.topic, timeoutMs: 5000 });
        const batch = makeBatch(rig.tenant, rig.topic, 100_000 + i);
        producer.attempted.add(batch.id);
        // sent again until accepted, as the producers do (a connection handed to an instance as it goes can be cut)
        for (let attempt = 1; ; attempt++) {
          try {
            await fresh.publish(rig.sendKey, batch);
            break;
          } catch (err) {
            rig.outcomes.add('publish', err instanceof UnreachableError ? `network:${err.causeCode}` : String((err as ApiError).status));
            if (attempt === 10 || !(err instanceof UnreachableError || (err instanceof ApiError && (err.status >= 500 || err.code === 'publish_in_progress'))))
              throw new Error(`a publish on a fresh connection failed: ${String(err)}; ${context()}`);
            await sleep(200);
          }
        }
        producer.published.push(batch.id);
      }
      const resumed = await rig.waitForSink(holdsAcceptedAfter(producer, acceptedAtKill), 30_000);
      expect(resumed, `no delivery after the kill; ${context()}`).toBe(true);
      stage('delivery resumed; stopping the producers');
    } finally {
      await producer.stop();
    }
    // PAS and PAC see a handful of long-lived connections in a run (the agent's, the rig's): a few new
    // clients, as more agents would be, so round robin reaches every instance whatever a check flapped
    for (const service of ['pas', 'pac'] as const) {
      for (let i = 0; i < 4; i++) expect((await createHttp({ caPem, baseUrl: lb[service] }).get('/healthz')).status).toBe(200);
    }
    let stats: Awaited<ReturnType<typeof instanceStats>> = {};
    const verdict = await expectEveryAcceptedDelivered(rig, producer, 'multi-instance', {
      timeoutMs: 30_000,
      stage,
      context,
      figures: async () => {
        stats = await instanceStats(socket);
        const connections = Object.entries(stats).map(([name, { status, sessions }]) => `${name} ${status} ${sessions}`);
        return { connections: connections.join(', ') };
      },
    });
    // the checkpoint kept the sink free of duplicates, whatever came back
    expect(verdict.duplicates, verdict.summary).toBe(0);
    // every instance that ran took connections, the replacement too
    for (const name of ['pas1', 'pas2', 'pac1', 'pac2', 'topic1', 'topic2', 'topic3', 'topic4']) expect(stats[name]?.sessions, `${name}: ${JSON.stringify(stats)}`).toBeGreaterThan(0);
    expect(rig.outcomes.internalErrors(), rig.outcomes.toString()).toBe(0);
    // the surviving processes are still up (a crash would show here, not as a lost batch)
    for (const [name, child] of children) if (name !== 'topic1') expect(child.exitCode, `${name}: ${stderrOf(child)}`).toBeNull();
  }, 180_000);
});
