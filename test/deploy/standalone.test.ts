import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditClient, entitlementClient, pacClient, pasClient, topicClient } from '@keyway/clients';
import { serviceRoleUrl } from '@keyway/db';
import { AMQP_URL, createTestDatabase, deleteQueues, POSTGRES_ADMIN_URL, SERVICES, testPki, type ServiceName, type TestDatabase } from '@keyway/testkit';
import { startClamdServer, type ClamdServer } from '@keyway/testkit/servers';
import { AUDIT_FEED, topicResource } from '@keyway/contracts';
import { makeBatch, PASSWORD } from '../helpers.ts';
import { clearStorePrefix, exited, freePort, logLines, productionEnvs, runService as run, stopAll, waitReady, writePkiFiles } from './processes.ts';

describe('each service runs on its own process from its main.ts', () => {
  const children: ChildProcess[] = [];
  const urls = {} as Record<ServiceName, string>;
  const env = {} as Record<ServiceName, Record<string, string>>;
  let dir: string;
  let caPem: string;
  let prefix: string;
  let database: TestDatabase;
  let clamd: ClamdServer;
  let sftpPort: number;
  /** the tenants the tests make, whose subscription queues are deleted at the end (RabbitMQ keeps them a week otherwise) */
  const tenants: string[] = [];

  beforeAll(async () => {
    const pki = await testPki();
    caPem = pki.ca.certPem;
    dir = mkdtempSync(join(tmpdir(), 'keyway-standalone-'));
    writePkiFiles(dir, pki);
    prefix = `keyway-standalone-${Date.now()}`;
    [database, clamd] = await Promise.all([createTestDatabase(), startClamdServer()]);
    const production = await productionEnvs({ dir, database, prefix, clamdAddress: clamd.address });
    Object.assign(env, production.env);
    Object.assign(urls, production.urls);
    sftpPort = production.sftpPort;
    for (const name of SERVICES) children.push(run(name, env[name]));
    // Ready when every /readyz answers 200.
    // seven processes each transpiling with tsx on a shared CI machine: tens of seconds under load
    const deadline = Date.now() + 90_000;
    for (const [i, name] of SERVICES.entries()) await waitReady(name, urls[name], caPem, deadline - Date.now(), children[i]);
  }, 120_000);

  afterAll(async () => {
    await stopAll(children);
    await clearStorePrefix(prefix);
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

    // the releases service's SFTP front listens too, its host key certified by PAS at start
    const banner = await new Promise<string>((resolve, reject) => {
      const socket = connect(sftpPort, '127.0.0.1');
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString('latin1').trim());
      });
      socket.once('error', reject);
    });
    expect(banner).toBe('SSH-2.0-Keyway');
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
