import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, type Db } from '@keyway/db';
import { createTestDatabase, type TestDatabase } from '@keyway/testkit';

/**
 * Issue 11, least privilege between services, on the real server: each service connects as its own
 * role (0001_service_roles.sql), which reaches its own schema's records and nobody else's, cannot
 * change any schema's shape, and cannot rewrite the audit trail.
 */
const SERVICES = ['idp', 'entitlement', 'pas', 'pac', 'topic', 'audit', 'releases'] as const;

let database: TestDatabase;
const pools = new Map<string, Db>();
const as = (service: string): Db => {
  const pool = pools.get(service) ?? openPostgres({ url: database.serviceUrl(service), max: 1 });
  pools.set(service, pool);
  return pool;
};
/** The SQLSTATE a statement fails with as that role, or 'ok'. */
const attempt = async (service: string, sql: string, params: unknown[] = []): Promise<string> =>
  as(service)
    .query(sql, params)
    .then(
      () => 'ok',
      (err: { code?: string }) => err.code ?? 'error',
    );
const PERMISSION_DENIED = '42501';

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  for (const pool of pools.values()) await pool.close();
  await database?.drop();
});

describe('each service’s PostgreSQL role reaches its own records only', () => {
  it('reads and writes its own schema’s records', async () => {
    for (const service of SERVICES) {
      expect(await attempt(service, `INSERT INTO keyway_${service}.store_keys (key, kind, value) VALUES ($1, 'string', $2)`, [Buffer.from(`probe:${service}`), Buffer.from('x')]), service).toBe('ok');
      expect(await attempt(service, `SELECT key FROM keyway_${service}.store_keys`), service).toBe('ok');
    }
  });

  it('is refused every other service’s records, for reading and for writing (e.g. topic cannot read PAS’s keys, PAS cannot write entitlement’s)', async () => {
    const refusals: string[] = [];
    for (const service of SERVICES) {
      for (const other of SERVICES.filter((s) => s !== service)) {
        const read = await attempt(service, `SELECT value FROM keyway_${other}.store_keys`);
        const write = await attempt(service, `INSERT INTO keyway_${other}.store_keys (key, kind, value) VALUES ($1, 'string', $2)`, [Buffer.from('intruder'), Buffer.from('x')]);
        if (read !== PERMISSION_DENIED || write !== PERMISSION_DENIED) refusals.push(`${service} → ${other}: read ${read}, write ${write}`);
      }
    }
    expect(refusals).toEqual([]);
    expect(await attempt('topic', 'SELECT value FROM keyway_pas.store_keys')).toBe(PERMISSION_DENIED);
    expect(await attempt('pas', `UPDATE keyway_entitlement.store_keys SET value = $1`, [Buffer.from('x')])).toBe(PERMISSION_DENIED);
  });

  it('cannot change any schema’s shape, nor create anything in public', async () => {
    for (const service of SERVICES) {
      expect(await attempt(service, `CREATE TABLE keyway_${service}.mine (a int)`), service).toBe(PERMISSION_DENIED);
      expect(await attempt(service, `ALTER TABLE keyway_${service}.store_keys ADD COLUMN b int`), service).not.toBe('ok');
      expect(await attempt(service, 'CREATE TABLE public.mine (a int)'), service).toBe(PERMISSION_DENIED);
    }
  });

  it('cannot rewrite or remove audit events, its own stream included', async () => {
    for (const service of SERVICES) {
      expect(await attempt(service, `UPDATE keyway_audit.events SET action = 'x' WHERE stream = $1`, [service]), service).toBe(PERMISSION_DENIED);
      expect(await attempt(service, `DELETE FROM keyway_audit.events WHERE stream = $1`, [service]), service).toBe(PERMISSION_DENIED);
      expect(await attempt(service, 'TRUNCATE keyway_audit.events'), service).toBe(PERMISSION_DENIED);
    }
  });
});
