import { execFileSync } from 'node:child_process';
import { createPrivateKey, KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, type CryptoKey } from 'jose';
import { tenantKeys } from '@keyway/pac';
import { loadKeyRing } from '@keyway/pas';
import { unseal } from '@keyway/seal';
import { fingerprint, parsePublicKeyLine } from '@keyway/ssh';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant } from '../helpers.ts';

/**
 * Issue 11, "Keys sealed at rest": a dump of the database (pg_dump, the system of record) and of
 * what the services stored in Redis holds no signing private key and no SAS root key, in any
 * encoding someone grepping it would try.
 */

/** Every value under `pattern` as redis-cli prints it, whatever the type: one server-side pass (SCAN in Lua). */
const DUMP_SCRIPT = `
local out, cursor = {}, '0'
local function add(values) for _, v in ipairs(values) do
  if type(v) == 'table' then add(v) else table.insert(out, v) end
end end
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    local kind = redis.call('TYPE', key).ok
    table.insert(out, key)
    if kind == 'string' then table.insert(out, redis.call('GET', key))
    elseif kind == 'hash' then add(redis.call('HGETALL', key))
    elseif kind == 'set' then add(redis.call('SMEMBERS', key))
    elseif kind == 'zset' then add(redis.call('ZRANGE', key, 0, -1))
    elseif kind == 'list' then add(redis.call('LRANGE', key, 0, -1))
    elseif kind == 'stream' then add(redis.call('XRANGE', key, '-', '+')) end
  end
until cursor == '0'
return out`;
const redisDump = (pattern: string) => execFileSync('redis-cli', ['-u', REDIS_URL, '--raw', 'EVAL', DUMP_SCRIPT, '0', pattern], { encoding: 'utf8', maxBuffer: 64 << 20 });

/**
 * The suite's whole database as pg_dump writes it, with every bytea value (the record store keeps
 * keys and values as bytea, which pg_dump prints as hex) also decoded, so a grep sees the text.
 */
function databaseDump(url: string): string {
  const dump = execFileSync('pg_dump', ['--data-only', '--dbname', url], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const decoded = dump.replace(/\\\\x([0-9a-f]+)/g, (_match, hex: string) => Buffer.from(hex, 'hex').toString('utf8'));
  return `${dump}\n${decoded}`;
}

const unpadded = (b64: string) => b64.replace(/=+$/, '');
/** The spellings of secret bytes a leak would take: base64 (with or without padding), base64url, hex. */
const spellings = (bytes: Buffer) => [unpadded(bytes.toString('base64')), bytes.toString('base64url'), bytes.toString('hex'), bytes.toString('hex').toUpperCase()];

/** A private key as raw d (the JWK "d" is its base64url), as PKCS#8 DER and every line of its PEM body. */
async function privateKeySpellings(privateKey: CryptoKey | KeyObject): Promise<string[]> {
  const jwk = await exportJWK(privateKey);
  const key = privateKey instanceof KeyObject ? privateKey : KeyObject.from(privateKey);
  const pem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  const body = pem.split('\n').filter((line) => line && !line.startsWith('-----'));
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return [jwk.d!, ...spellings(Buffer.from(jwk.d!, 'base64url')), ...spellings(der), body.join(''), ...body];
}

const leaks = (dump: string, secrets: string[]) => secrets.filter((secret) => dump.includes(secret));

describe('keys sealed at rest (PostgreSQL and Redis)', { timeout: 60_000 }, () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
  });
  afterAll(() => suite?.close());

  it('a dump of the database and of every Redis key the suite stored holds no signing private key, no SAS root key and no SSH CA key', async () => {
    const { tenant, email } = await provisionTenant(suite);
    const tokens = await suite.pas.password(email, PASSWORD);
    await suite.pac.sas({ refresh_token: tokens.refresh_token, rights: 'listen' });

    const ring = await loadKeyRing(suite.records.pas, suite.kek);
    const sasRoot = (await tenantKeys(suite.records.pac, suite.kek).find(tenant))!;
    const signingSecrets = (await Promise.all(ring.list().map((k) => privateKeySpellings(k.privateKey)))).flat();
    const rootSecrets = [sasRoot.primary, sasRoot.secondary].flatMap((key) => [key, ...spellings(Buffer.from(key, 'base64'))]);
    expect(ring.list().length).toBeGreaterThanOrEqual(2);
    // the SSH CA key, opened here as PAS opens it (its seal is bound to its public key)
    const ca = JSON.parse((await suite.records.pas.get('ssh-ca'))!) as { public_key: string; private_key: string };
    expect(ca.private_key).toMatch(/^kwsealed:v1:/);
    const caKey = createPrivateKey((await unseal(suite.kek, ca.private_key, `pas/ssh-ca/${fingerprint(parsePublicKeyLine(ca.public_key))}`)).toString('utf8'));
    const caSecrets = await privateKeySpellings(caKey);

    const database = databaseDump(suite.database!.adminUrl);
    const redis = redisDump(`${suite.stores.pas.prefix.replace(/pas:$/, '')}*`);
    // the database dump is of the right records: the ring's kids, the tenant's key record, sealed values
    for (const key of ring.list()) expect(database).toContain(key.kid);
    expect(database).toContain(`tenant-keys:${tenant}`);
    expect(database).toContain(ca.public_key);
    expect(database.match(/kwsealed:v1:/g)?.length).toBeGreaterThanOrEqual(ring.list().length + 2);
    // and Redis holds the hot state of the same suite (refresh families), so an empty dump cannot pass
    expect(redis).toContain('family:');
    const dump = `${database}\n${redis}`;
    // and the matcher finds a key where one is in the clear
    expect(leaks(JSON.stringify(await exportJWK(ring.active().privateKey)), signingSecrets)).not.toEqual([]);
    expect(leaks(JSON.stringify(sasRoot), rootSecrets)).not.toEqual([]);
    expect(leaks(caKey.export({ type: 'pkcs8', format: 'pem' }).toString(), caSecrets)).not.toEqual([]);

    expect(leaks(dump, signingSecrets)).toEqual([]);
    expect(leaks(dump, rootSecrets)).toEqual([]);
    expect(leaks(dump, caSecrets)).toEqual([]);
  });
});
