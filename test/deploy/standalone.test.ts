import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditClient, entitlementClient, pacClient, pasClient, topicClient } from '@keyway/clients';
import { ensureDevKek } from '@keyway/seal';
import { createRedisStore } from '@keyway/store';
import { serviceRoleUrl } from '@keyway/db';
import { AMQP_URL, createTestDatabase, deleteQueues, POSTGRES_ADMIN_URL, REDIS_URL, SERVICES, testPki, type ServiceName, type TestDatabase } from '@keyway/testkit';
import { startClamdServer, type ClamdServer } from '@keyway/testkit/servers';
import { AUDIT_FEED, topicResource } from '@keyway/contracts';
import { makeBatch, PASSWORD } from '../helpers.ts';
import { exited, freePort, logLines, runService as run, waitReady, writePkiFiles } from './processes.ts';

describe('each service runs on its own process from its main.ts', () => {
  const children: ChildProcess[] = [];
  const urls = {} as Record<ServiceName, string>;
  const env = {} as Record<ServiceName, Record<string, string>>;
  let dir: string;
  let caPem: string;
  let prefix: string;
  let database: TestDatabase;
  let clamd: ClamdServer;
  /** the tenants the tests make, whose subscription queues are deleted at the end (RabbitMQ keeps them a week otherwise) */
  const tenants: string[] = [];

  beforeAll(async () => {
    const pki = await testPki();
    caPem = pki.ca.certPem;
    dir = mkdtempSync(join(tmpdir(), 'keyway-standalone-'));
    writePkiFiles(dir, pki);
    // production: the audit service's checkpoint key is configured, never generated
    writeFileSync(join(dir, 'audit-checkpoint.key'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const ports = {} as Record<ServiceName, number>;
    for (const name of SERVICES) {
      ports[name] = await freePort();
      urls[name] = `https://localhost:${ports[name]}`;
    }
    prefix = `keyway-standalone-${Date.now()}`;
    [database, clamd] = await Promise.all([createTestDatabase(), startClamdServer()]);
    // the operator's keyring (0600) that PAS and PAC seal their keys under, and the IdP its TOTP secrets
    const kekFile = await ensureDevKek(dir);
    const common = (name: ServiceName) => ({
      PORT: String(ports[name]),
      TLS_CERT_FILE: join(dir, `${name}.crt`),
      TLS_KEY_FILE: join(dir, `${name}.key`),
      TLS_CA_FILE: join(dir, 'ca.crt'),
      REDIS_URL,
      DATABASE_URL: database.serviceUrl(name),
      LOG_LEVEL: 'warn',
      STORE_PREFIX: prefix,
    });
    // KEYWAY_ENV unset: production, so every service but the IdP needs AMQP_URL too
    Object.assign(env, {
      idp: { ...common('idp'), KEYWAY_KEK_FILE: kekFile, PAS_URL: urls.pas, ENTITLEMENT_URL: urls.entitlement },
      entitlement: { ...common('entitlement'), AMQP_URL, PUBLIC_URL: urls.entitlement, IDP_URL: urls.idp, PAS_URL: urls.pas, PAC_URL: urls.pac, AUDIT_URL: urls.audit, TOPIC_URL: urls.topic },
      pas: { ...common('pas'), AMQP_URL, KEYWAY_KEK_FILE: kekFile, PUBLIC_URL: urls.pas, ACCESS_AUDIENCE: urls.pac, IDP_URL: urls.idp, ENTITLEMENT_URL: urls.entitlement, AUDIT_URL: urls.audit },
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
        CLAMD_ADDRESS: clamd.address,
        CLAMD_STREAM_MAX_LENGTH: '64M',
      },
    });
    for (const name of SERVICES) children.push(run(name, env[name]));
    // Ready when every /readyz answers 200.
    // seven processes each transpiling with tsx on a shared CI machine: tens of seconds under load
    const deadline = Date.now() + 90_000;
    for (const [i, name] of SERVICES.entries()) await waitReady(name, urls[name], caPem, deadline - Date.now(), children[i]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(
      children.map((child) => {
        const done = exited(child);
        child.kill('SIGTERM');
        return done;
      }),
    );
    const store = await createRedisStore({ url: REDIS_URL, prefix: `${prefix}:` });
    const keys = await store.keys('');
    if (keys.length > 0) await store.del(...keys);
    await store.close();
    await database?.drop();
    await clamd?.stop();
    await deleteQueues(AMQP_URL, (name) => !tenants.some((tenant) => name.startsWith(`keyway.sub.${tenant}.`)));
  });

  it('runs the whole chain across seven processes', async () => {
    const pki = await testPki();
    const operator = entitlementClient({ baseUrl: urls.entitlement, caPem, clientCert: pki.certs.operator });
    const tenant = `s-${Date.now().toString(36)}`;
    tenants.push(tenant);
    await operator.createTenant({ id: tenant, name: 'Standalone', feeds: ['edr-events'] });
    await operator.createUser(tenant, { email: `agent@${tenant}.example`, password: PASSWORD, roles: ['full-control'] });
    const tokens = await pasClient({ baseUrl: urls.pas, caPem }).password(`agent@${tenant}.example`, PASSWORD);
    const sas = await pacClient({ baseUrl: urls.pac, caPem }).sas({ refresh_token: tokens.refresh_token, rights: 'listen-send' });
    const topic = topicClient({ baseUrl: urls.topic, caPem });
    const batch = makeBatch(tenant, 'edr-events', 1);
    await topic.publish(sas.sas_key, batch);
    const received = await topic.receive(sas.sas_key, tenant, 'edr-events', 'default', 5);
    expect(received?.batch).toEqual(batch);
    await topic.complete(sas.sas_key, tenant, 'edr-events', 'default', received!.message_id, received!.lock_token);

    // the audit service reads every service's trail, and exports a tenant's own through the topic service
    const audit = auditClient({ baseUrl: urls.audit, caPem, clientCert: pki.certs.operator });
    expect((await audit.events({ tenant, action: 'sas_key.minted' })).events).toHaveLength(1);
    await operator.grantFeed(tenant, AUDIT_FEED);
    const reader = await pacClient({ baseUrl: urls.pac, caPem }).sas({
      refresh_token: (await pasClient({ baseUrl: urls.pas, caPem }).password(`agent@${tenant}.example`, PASSWORD)).refresh_token,
      resource: topicResource(urls.topic, tenant, AUDIT_FEED),
      rights: 'listen',
    });
    const exported = await topic.receive(reader.sas_key, tenant, AUDIT_FEED, 'default', 10);
    expect(exported?.batch.records.length).toBeGreaterThan(0);
  }, 30_000);

  it('stops on SIGTERM with exit code 0, and refuses bad configuration with every bad key and exit code 78', async () => {
    const bad = run('pas', { PORT: 'eighty', PUBLIC_URL: 'not a url', TLS_CERT_FILE: 'x', TLS_KEY_FILE: 'x', TLS_CA_FILE: 'x' });
    const result = await exited(bad);
    expect(result.code).toBe(78);
    for (const key of ['PORT', 'PUBLIC_URL', 'ACCESS_AUDIENCE', 'IDP_URL', 'ENTITLEMENT_URL']) expect(result.stderr).toContain(key);
    const first = children.shift()!;
    const done = exited(first);
    first.kill('SIGTERM');
    expect((await done).code).toBe(0);
  });

  it('in production (the default) refuses to start without DATABASE_URL / REDIS_URL / AMQP_URL / KEYWAY_KEK_FILE (exit 78, naming them)', async () => {
    const { DATABASE_URL: _database, REDIS_URL: _redis, AMQP_URL: _amqp, KEYWAY_KEK_FILE: _kek, ...pas } = env.pas;
    const refused = await exited(run('pas', pas));
    expect(refused.code).toBe(78);
    for (const key of ['DATABASE_URL', 'REDIS_URL', 'AMQP_URL', 'KEYWAY_KEK_FILE']) expect(refused.stderr).toContain(key);
    const { REDIS_URL: _idpRedis, ...idp } = env.idp;
    const idpRefused = await exited(run('idp', idp));
    expect(idpRefused.code).toBe(78);
    expect(idpRefused.stderr).toContain('REDIS_URL');
    expect(idpRefused.stderr).not.toContain('AMQP_URL');
  });

  it('refuses to start on a database whose schema is behind its migrations (exit 78, naming `keyway db migrate`)', async () => {
    const url = new URL(POSTGRES_ADMIN_URL);
    url.pathname = '/postgres';
    const refused = await exited(run('pas', { ...env.pas, DATABASE_URL: serviceRoleUrl(url.toString(), 'pas') }));
    expect(refused.code).toBe(78);
    expect(refused.stdout + refused.stderr).toContain('keyway db migrate');
  });

  it('in development starts on the embedded database, store and broker and the development keyring, warning once for each what is lost', async () => {
    const { DATABASE_URL: _database, REDIS_URL: _redis, AMQP_URL: _amqp, KEYWAY_KEK_FILE: _kek, ...pas } = env.pas;
    const child = run('pas', { ...pas, KEYWAY_ENV: 'development', LOG_LEVEL: 'info', PORT: String(await freePort()) });
    const done = exited(child);
    // PGlite starts and migrates in the child: tens of seconds on a loaded two-core machine
    const deadline = Date.now() + 75_000;
    while (!logLines(child).some((line) => line.msg === 'listening') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(child.exitCode).toBeNull();
    child.kill('SIGTERM');
    expect((await done).code).toBe(0);
    const warnings = logLines(child)
      .filter((line) => line.level === 'warn')
      .map((line) => line.msg);
    for (const key of ['DATABASE_URL', 'REDIS_URL', 'AMQP_URL', 'KEYWAY_KEK_FILE']) expect(warnings.filter((msg) => msg.includes(key))).toHaveLength(1);
  }, 90_000);
});
