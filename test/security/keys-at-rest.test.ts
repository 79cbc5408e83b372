import { execFileSync } from 'node:child_process';
import { KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, type CryptoKey } from 'jose';
import { tenantKeys } from '@keyway/pac';
import { loadKeyRing } from '@keyway/pas';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant } from '../helpers.ts';

/**
 * Issue 11, "Keys sealed at rest": a dump of what the services stored in Redis holds no signing
 * private key and no SAS root key, in any encoding someone grepping it would try.
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

const unpadded = (b64: string) => b64.replace(/=+$/, '');
/** The spellings of secret bytes a leak would take: base64 (with or without padding), base64url, hex. */
const spellings = (bytes: Buffer) => [unpadded(bytes.toString('base64')), bytes.toString('base64url'), bytes.toString('hex'), bytes.toString('hex').toUpperCase()];

/** A private key as raw d (the JWK "d" is its base64url), as PKCS#8 DER and every line of its PEM body. */
async function privateKeySpellings(privateKey: CryptoKey): Promise<string[]> {
  const jwk = await exportJWK(privateKey);
  const pem = KeyObject.from(privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  const body = pem.split('\n').filter((line) => line && !line.startsWith('-----'));
  const der = KeyObject.from(privateKey).export({ type: 'pkcs8', format: 'der' });
  return [jwk.d!, ...spellings(Buffer.from(jwk.d!, 'base64url')), ...spellings(der), body.join(''), ...body];
}

const leaks = (dump: string, secrets: string[]) => secrets.filter((secret) => dump.includes(secret));

describe('keys sealed at rest (Redis)', { timeout: 60_000 }, () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
  });
  afterAll(() => suite?.close());

  it('a dump of every key the suite stored holds no signing private key and no SAS root key', async () => {
    const { tenant, email } = await provisionTenant(suite);
    const tokens = await suite.pas.password(email, PASSWORD);
    await suite.pac.sas({ refresh_token: tokens.refresh_token, rights: 'listen' });

    const ring = await loadKeyRing(suite.stores.pas, suite.kek);
    const sasRoot = (await tenantKeys(suite.stores.pac, suite.kek).find(tenant))!;
    const signingSecrets = (await Promise.all(ring.list().map((k) => privateKeySpellings(k.privateKey)))).flat();
    const rootSecrets = [sasRoot.primary, sasRoot.secondary].flatMap((key) => [key, ...spellings(Buffer.from(key, 'base64'))]);
    expect(ring.list().length).toBeGreaterThanOrEqual(2);

    const dump = redisDump(`${suite.stores.pas.prefix.replace(/pas:$/, '')}*`);
    // the dump is of the right records: the ring's kids, the tenant's key record, sealed values
    for (const key of ring.list()) expect(dump).toContain(key.kid);
    expect(dump).toContain(`tenant-keys:${tenant}`);
    expect(dump.match(/kwsealed:v1:/g)?.length).toBeGreaterThanOrEqual(ring.list().length + 2);
    // and the matcher finds a key where one is in the clear
    expect(leaks(JSON.stringify(await exportJWK(ring.active().privateKey)), signingSecrets)).not.toEqual([]);
    expect(leaks(JSON.stringify(sasRoot), rootSecrets)).not.toEqual([]);

    expect(leaks(dump, signingSecrets)).toEqual([]);
    expect(leaks(dump, rootSecrets)).toEqual([]);
  });
});
