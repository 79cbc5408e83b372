import { startRedisServer, type RedisServer } from '@keyway/testkit/servers';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeAclRules } from './acl.ts';
import { createRedisStore } from './redis.ts';
import type { Store } from './store.ts';
import { storeContract } from './store.contract.ts';

// A private server: ACL SETUSER changes the server's users, which the machine's Redis must not get.
let server: RedisServer;
let admin: Redis;
const password = randomBytes(16).toString('hex');
const userUrl = (user: string) => {
  const url = new URL(server.url);
  url.username = user;
  url.password = password;
  return url.toString();
};

beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
  await admin.call('ACL', 'SETUSER', 'pas', 'on', `>${password}`, ...storeAclRules({ keyPrefix: 'keyway:pas:' }));
  await admin.call('ACL', 'SETUSER', 'pac', 'on', `>${password}`, ...storeAclRules({ keyPrefix: 'keyway:pac:', listKeys: true }));
});

afterAll(async () => {
  admin?.disconnect();
  await server?.close();
});

/** A store as `user`, except keys() (SCAN, which this user may not run): the contract's own cleanup and its keys() cases run as admin. */
function exceptKeys(asUser: Store, asAdmin: Store): Store {
  return new Proxy(asUser, {
    get(target, property, receiver) {
      if (property === 'keys') return (prefix: string) => asAdmin.keys(prefix);
      if (property === 'scoped') return (sub: string) => exceptKeys(target.scoped(sub), asAdmin.scoped(sub));
      if (property === 'close') return async () => Promise.all([target.close(), asAdmin.close()]).then(() => undefined);
      return Reflect.get(target, property, receiver);
    },
  });
}

storeContract('redis, as an ACL user with SCAN (pac)', {
  create: (prefix) => createRedisStore({ url: userUrl('pac'), prefix: `keyway:pac:${prefix}` }),
  elapse: (ms) => sleep(ms),
});

storeContract('redis, as an ACL user without SCAN (pas)', {
  create: async (prefix) => exceptKeys(await createRedisStore({ url: userUrl('pas'), prefix: `keyway:pas:${prefix}` }), await createRedisStore({ url: server.url, prefix: `keyway:pas:${prefix}` })),
  elapse: (ms) => sleep(ms),
});

describe('a store ACL user is refused outside its prefix and its commands', () => {
  const NOPERM = /NOPERM/;
  // what Redis 7 answers when a script's call is refused
  const SCRIPT_NOPERM = /user executing the script can't access/;

  it('reads and writes nothing under another prefix, directly or from a script', async () => {
    await admin.set('keyway:entitlement:tenant', 'acme');
    const pas = new Redis(userUrl('pas'));
    try {
      await expect(pas.get('keyway:entitlement:tenant')).rejects.toThrow(NOPERM);
      await expect(pas.set('keyway:entitlement:tenant', 'evil')).rejects.toThrow(NOPERM);
      await expect(pas.del('keyway:entitlement:tenant')).rejects.toThrow(NOPERM);
      // a key the script did not declare is refused when the script calls it; a declared one before it runs
      await expect(pas.eval("return redis.call('SET', 'keyway:entitlement:tenant', 'evil')", 0)).rejects.toThrow(SCRIPT_NOPERM);
      await expect(pas.eval("return redis.call('SET', KEYS[1], 'evil')", 1, 'keyway:entitlement:tenant')).rejects.toThrow(NOPERM);
      // a prefix that only starts like its own
      await expect(pas.set('keyway:pas-other:x', '1')).rejects.toThrow(NOPERM);
      expect(await admin.get('keyway:entitlement:tenant')).toBe('acme');
      // and its own keys work
      expect(await pas.set('keyway:pas:x', '1')).toBe('OK');
      expect(await pas.eval("return redis.call('GET', KEYS[1])", 1, 'keyway:pas:x')).toBe('1');
    } finally {
      pas.disconnect();
    }
  });

  it('runs no admin, dangerous, key-listing or pub/sub command', async () => {
    const pas = new Redis(userUrl('pas'));
    try {
      await expect(pas.scan('0')).rejects.toThrow(NOPERM);
      await expect(pas.keys('*')).rejects.toThrow(NOPERM);
      await expect(pas.flushall()).rejects.toThrow(NOPERM);
      await expect(pas.call('CONFIG', 'GET', 'aclfile')).rejects.toThrow(NOPERM);
      await expect(pas.call('ACL', 'SETUSER', 'pas', '+@all')).rejects.toThrow(NOPERM);
      await expect(pas.call('SCRIPT', 'FLUSH')).rejects.toThrow(NOPERM);
      await expect(pas.publish('keyway:pas:channel', 'x')).rejects.toThrow(NOPERM);
      await expect(pas.info()).rejects.toThrow(NOPERM);
    } finally {
      pas.disconnect();
    }
  });

  it('the store reports a refusal as the command error it is, not as an outage', async () => {
    const pas = await createRedisStore({ url: userUrl('pas'), prefix: 'keyway:entitlement:' });
    try {
      await expect(pas.get('tenant')).rejects.toThrow(NOPERM);
      await expect(pas.get('tenant')).rejects.not.toHaveProperty('name', 'StoreUnavailableError');
    } finally {
      await pas.close();
    }
  });
});
