import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pacClient, pasClient, topicClient } from '@keyway/clients';
import { createRedisStore } from '@keyway/store';
import { AMQP_URL, createTestDatabase, deleteQueues, REDIS_URL, SERVICES, testPki, type ServiceName, type TestDatabase } from '@keyway/testkit';
import { startClamdServer, type ClamdServer } from '@keyway/testkit/servers';
import { makeBatch, PASSWORD } from '../helpers.ts';
import { exited, productionEnvs, spawnKept, stderrOf, waitReady, writePkiFiles } from './processes.ts';

/**
 * `pnpm build`'s artifacts run as an operator runs them: built into a directory outside the repo (so
 * nothing resolves from the workspace's node_modules), each service started with plain `node` (no
 * tsx) on the real PostgreSQL, Redis and RabbitMQ; the packed CLI installed offline sets up a tenant,
 * and the one-file agent pulls a batch through them.
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
    [database, clamd] = await Promise.all([createTestDatabase(), startClamdServer()]);
    const production = await productionEnvs({ dir, database, prefix, clamdAddress: clamd.address });
    urls = production.urls;
    for (const name of SERVICES) children.set(name, spawnKept(process.execPath, [join(out, 'services', name, 'main.mjs')], production.env[name]));
    // no transpiling at start: far quicker than the tsx processes of standalone.test.ts
    const deadline = Date.now() + 60_000;
    for (const name of SERVICES) await waitReady(name, urls[name], caPem, deadline - Date.now(), children.get(name));
  }, 150_000);

  afterAll(async () => {
    for (const child of children.values()) child.kill('SIGKILL');
    const store = await createRedisStore({ url: REDIS_URL, prefix: `${prefix}:` });
    const keys = await store.keys('');
    if (keys.length > 0) await store.del(...keys);
    await store.close();
    await database?.drop();
    await clamd?.stop();
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
  });

  it('installs the packed CLI offline; it reads its migrations, sets up a tenant, and the one-file agent pulls a batch through the built services', async () => {
    const prefixDir = mkdtempSync(join(tmpdir(), 'keyway-npm-'));
    const npm = (args: string[], cwd: string) => spawnSync('npm', [...args, '--offline', '--no-audit', '--no-fund', '--cache', join(prefixDir, 'cache')], { cwd, encoding: 'utf8' });
    const packed = npm(['pack', '--pack-destination', prefixDir, '--json'], join(out, 'cli'));
    expect(packed.status, packed.stderr).toBe(0);
    const tarball = join(prefixDir, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
    const installed = npm(['install', '-g', '--prefix', join(prefixDir, 'global'), tarball], prefixDir);
    expect(installed.status, installed.stderr).toBe(0);
    const keyway = (args: string[], input?: string) =>
      spawnSync(
        join(prefixDir, 'global/bin/keyway'),
        ['--ca-file', join(dir, 'ca.crt'), '--cert', join(dir, 'operator.crt'), '--key', join(dir, 'operator.key'), '--entitlement-url', urls.entitlement, ...args],
        {
          encoding: 'utf8',
          input,
          env: { PATH: process.env.PATH, HOME: prefixDir },
        },
      );
    const help = spawnSync(join(prefixDir, 'global/bin/keyway'), ['--help'], { encoding: 'utf8' });
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
    const npm = (args: string[]) => spawnSync('npm', [...args, '--offline', '--no-audit', '--no-fund', '--cache', join(prefixDir, 'cache')], { cwd: prefixDir, encoding: 'utf8' });
    const packed = npm(['pack', join(out, 'agent'), '--json']);
    expect(packed.status, packed.stderr).toBe(0);
    const installed = npm(['install', '-g', '--prefix', join(prefixDir, 'global'), join(prefixDir, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename)]);
    expect(installed.status, installed.stderr).toBe(0);
    const bin = await exited(spawnKept(join(prefixDir, 'global/bin/keyway-importer'), [], {}));
    expect(bin.code).toBe(78);
    expect(bin.stderr).toContain('PAS_URL');
    rmSync(prefixDir, { recursive: true, force: true });
  });

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
