import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyspacePrefix, REDIS_USERS } from '@keyway/kit';
import { createRedisStore, StoreUnavailableError, type Store } from '@keyway/store';
import { startRedisServer, type RedisServer } from '@keyway/testkit/servers';
import { startKeyway } from '../cli/keyway.ts';

// Issue 11, least privilege between services: users.acl as `keyway redis acl` prints it, loaded by a
// private redis-server (the machine's Redis keeps its own users).
const passwords = Object.fromEntries(REDIS_USERS.map((user) => [user, randomBytes(24).toString('hex')]));
const variable = (user: string) => `KEYWAY_REDIS_PASSWORD_${user.toUpperCase().replaceAll('-', '_')}`;
const NOPERM = /NOPERM/;

let dir: string;
let redis: RedisServer;
const opened: Store[] = [];

const urlAs = (user: string | undefined, password = user && passwords[user]) => {
  const url = new URL(redis.url);
  if (user !== undefined) url.username = user;
  if (password) url.password = password;
  return url.toString();
};
/** `user`'s connection, looking at the keyspace of `keyspace` (its own unless said otherwise). */
async function storeAs(user: string | undefined, keyspace = user ?? 'default', password?: string): Promise<Store> {
  const store = await createRedisStore({ url: urlAs(user, password), prefix: keyspacePrefix('keyway', keyspace) });
  opened.push(store);
  return store;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keyway-redis-acl-'));
  // one password from a file, the rest from variables
  writeFileSync(join(dir, 'pas.password'), `${passwords.pas}\n`, { mode: 0o600 });
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: dir, [`${variable('pas')}_FILE`]: join(dir, 'pas.password') };
  for (const user of REDIS_USERS) if (user !== 'pas') env[variable(user)] = passwords[user] as string;
  const printed = await startKeyway(['redis', 'acl'], env).done;
  expect(printed.stderr).toBe('');
  expect(printed.code).toBe(0);
  for (const password of Object.values(passwords)) expect(printed.stdout).not.toContain(password);
  writeFileSync(join(dir, 'users.acl'), printed.stdout);
  redis = await startRedisServer({ args: ['--aclfile', join(dir, 'users.acl')] });
});

afterAll(async () => {
  await Promise.all(opened.map((store) => store.close()));
  await redis?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Redis ACL users per service (keyway redis acl)', () => {
  it('each service works in its own keyspace as its own user', async () => {
    for (const service of REDIS_USERS.filter((user) => user !== 'admin')) {
      const store = await storeAs(service);
      await store.set('k', service, { ttlMs: 60_000 });
      expect(await store.commitIf({ key: 'k', expected: service }, [{ op: 'zadd', key: 'index', members: ['a'] }])).toBe(true);
      expect(await store.zrangeByLex('index')).toEqual(['a']);
      expect(await store.take('k')).toBe(service);
    }
    // what is listed lives in PostgreSQL: no service's user may SCAN, which key patterns do not bound
    for (const service of REDIS_USERS.filter((user) => user !== 'admin')) await expect((await storeAs(service)).keys(''), service).rejects.toThrow(NOPERM);
  });

  it("the topic service cannot read, write or list PAS's keys", async () => {
    const admin = await storeAs('admin', 'pas');
    await admin.set('family:f1', 'secret');
    const topic = await storeAs('topic', 'pas');
    await expect(topic.get('family:f1')).rejects.toThrow(NOPERM);
    await expect(topic.set('family:f1', 'mine')).rejects.toThrow(NOPERM);
    await expect(topic.keys('')).rejects.toThrow(NOPERM);
    expect(await admin.get('family:f1')).toBe('secret');
  });

  it('PAS cannot write entitlement keys, directly or in a scripted commit', async () => {
    const admin = await storeAs('admin', 'entitlement');
    await admin.set('tenant:acme', '{"status":"active"}');
    const pas = await storeAs('pas', 'entitlement');
    await expect(pas.set('tenant:acme', '{"status":"evil"}')).rejects.toThrow(NOPERM);
    await expect(pas.del('tenant:acme')).rejects.toThrow(NOPERM);
    await expect(pas.commitIf({ key: 'tenant:acme', expected: '{"status":"active"}' }, [{ op: 'del', key: 'tenant:acme' }])).rejects.toThrow(NOPERM);
    expect(await admin.get('tenant:acme')).toBe('{"status":"active"}');
  });

  it('keyway redis acl makes up no password: a missing or weak one is exit 2 and no file', async () => {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: dir };
    for (const user of REDIS_USERS) if (user !== 'topic') env[variable(user)] = passwords[user] as string;
    const missing = await startKeyway(['redis', 'acl'], env).done;
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('KEYWAY_REDIS_PASSWORD_TOPIC');
    const weak = await startKeyway(['redis', 'acl'], { ...env, KEYWAY_REDIS_PASSWORD_TOPIC: 'topic' }).done;
    expect(weak.code).toBe(2);
    expect(weak.stdout).toBe('');
  });

  it('no one gets in as the default user or with a wrong password', async () => {
    // refused at start (a reply error, not an outage to wait out): ioredis reports the refused AUTH
    // itself (WRONGPASS) or the first command after it (NOAUTH), whichever its connection sees first
    await expect(storeAs(undefined)).rejects.toThrow(/NOAUTH|WRONGPASS/);
    await expect(storeAs('pas', 'pas', passwords.topic)).rejects.toThrow(/NOAUTH|WRONGPASS/);
    await expect(storeAs('pas', 'pas', passwords.topic)).rejects.not.toBeInstanceOf(StoreUnavailableError);
  });
});
