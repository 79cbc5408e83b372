import { migrate, openPglite, openPostgres, type Db } from '@keyway/db';
import { AccessDenied, silentLogger, TemporarilyUnavailable } from '@keyway/kit';
import { createMemoryStore } from '@keyway/store';
import { createTestDatabase, type TestDatabase } from '@keyway/testkit';
import { tcpProxy, viaProxy } from '@keyway/testkit/tcp-proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditContract } from './audit.contract.ts';
import { createAuditLog } from './audited.ts';
import { appendEvent } from './chain.ts';
import { auditEvent } from './event.ts';
import { audited } from './step.ts';
import { readSince } from './export.ts';

auditContract('postgres', {
  async start() {
    const database = await createTestDatabase();
    const pools: Db[] = [];
    const open = (url: string) => {
      const db = openPostgres({ url });
      pools.push(db);
      return db;
    };
    const roles = new Map<string, Db>();
    return {
      admin: open(database.adminUrl),
      as: (service) => roles.get(service) ?? (roles.set(service, open(database.serviceUrl(service))).get(service) as Db),
      connect: async (service, n) => Array.from({ length: n }, () => open(database.serviceUrl(service))),
      async close() {
        for (const pool of pools) await pool.close();
        await database.drop();
      },
    };
  },
});

// PGlite is one connection as its superuser: the same SQL and behaviour, no roles to tell apart
auditContract('pglite', {
  async start() {
    const db = await openPglite();
    await migrate(db);
    return { admin: db, as: () => db, connect: async (_, n) => Array.from({ length: n }, () => db), close: () => db.close() };
  },
});

describe('audit trail on PostgreSQL: what each role may do', () => {
  let database: TestDatabase;
  const pools: Db[] = [];
  const as = (service: string) => {
    const db = openPostgres({ url: database.serviceUrl(service) });
    pools.push(db);
    return db;
  };
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    for (const pool of pools) await pool.close();
    await database?.drop();
  });

  it('a service appends to its own stream only, and cannot update, delete or truncate events, nor trim or checkpoint', async () => {
    const pas = as('pas');
    await appendEvent(pas, 'pas', auditEvent({ service: 'pas', action: 'grant.success', outcome: 'success' }));
    for (const sql of [
      `UPDATE keyway_audit.events SET outcome = 'denied'`,
      `DELETE FROM keyway_audit.events`,
      `TRUNCATE keyway_audit.events`,
      `UPDATE keyway_audit.anchors SET seq = 0`,
      `INSERT INTO keyway_audit.checkpoints VALUES ('pas', 1, 'h', now(), 'k', 's')`,
      `INSERT INTO keyway_audit.trims VALUES ('pas', 1, 'h', now(), now(), 'k', 's')`,
      `SELECT keyway_audit.trim_stream('pas', 1, 'h', now(), now(), 'k', 's')`,
    ]) {
      await expect(pas.query(sql), sql).rejects.toThrow(/permission denied/);
    }
    await expect(appendEvent(pas, 'pac', auditEvent({ service: 'pac', action: 'sas_key.minted', outcome: 'success' }))).rejects.toThrow(/row-level security/);
    // another service neither sees nor extends pas's stream
    const pac = as('pac');
    expect(await pac.query('SELECT * FROM keyway_audit.events')).toEqual([]);
    expect(await appendEvent(pac, 'pac', auditEvent({ service: 'pac', action: 'sas_key.minted', outcome: 'success' }))).toMatchObject({ seq: 1 });
  });

  it('the audit service reads every stream and trims what is past retention through the retention function, but cannot delete, rewrite or shorten retention itself', async () => {
    const audit = as('audit');
    expect((await audit.query<{ stream: string }>('SELECT DISTINCT stream FROM keyway_audit.events ORDER BY stream')).map((r) => r.stream)).toEqual(['pac', 'pas']);
    for (const sql of [
      `DELETE FROM keyway_audit.events`,
      `UPDATE keyway_audit.events SET outcome = 'denied'`,
      `TRUNCATE keyway_audit.events`,
      `UPDATE keyway_audit.checkpoints SET seq = 0`,
      `DELETE FROM keyway_audit.checkpoints`,
      `INSERT INTO keyway_audit.trims VALUES ('pas', 1, 'h', now(), now(), 'k', 's')`,
      `UPDATE keyway_audit.trims SET seq = 0`,
      `DELETE FROM keyway_audit.trims`,
    ]) {
      await expect(audit.query(sql), sql).rejects.toThrow(/permission denied/);
    }
    // it cannot cut recent history: retention is the administrator's, not the service's
    const trimFirst = `SELECT keyway_audit.trim_stream('pas', 1, (SELECT hash FROM keyway_audit.events WHERE stream = 'pas' AND seq = 1), now(), now(), 'k', 's')::int AS n`;
    await expect(audit.query(trimFirst)).rejects.toThrow(/not all past the retention/);
    await expect(audit.query(`UPDATE keyway_audit.retention SET keep = interval '0'`)).rejects.toThrow(/permission denied/);
    const admin = openPostgres({ url: database.adminUrl });
    pools.push(admin);
    await admin.query(`UPDATE keyway_audit.retention SET keep = interval '0'`);
    // the trim must name the anchor event's own hash, and is recorded with the anchor it sets
    await expect(audit.query(`SELECT keyway_audit.trim_stream('pas', 1, 'h', now(), now(), 'k', 's')`)).rejects.toThrow(/another hash/);
    expect(await audit.query(trimFirst)).toEqual([{ n: 1 }]);
    expect(await audit.query(`SELECT seq::int, key_id FROM keyway_audit.trims`)).toEqual([{ seq: 1, key_id: 'k' }]);
  });

  it('fails closed while the database is cut off, and the chain continues unbroken after', async () => {
    const target = new URL(database.serviceUrl('pas'));
    const proxy = await tcpProxy(target.hostname, Number(target.port || 5432));
    const db = openPostgres({ url: viaProxy(database.serviceUrl('pas'), proxy), connectTimeoutMs: 500 });
    pools.push(db);
    try {
      const failures: unknown[] = [];
      const counter = (into: unknown[]) => ({ add: (n: number, attrs: unknown) => into.push([n, attrs]) }) as never;
      const audit = createAuditLog({ db, store: createMemoryStore({ prefix: 'pas:' }), service: 'pas', logger: silentLogger, metrics: { events: counter([]), appendFailures: counter(failures) } });
      const before = (await audit.record({ action: 'grant.success', outcome: 'success', tenant: 'acme' })).seq;
      await audit.ready();

      await proxy.cut();
      const err = await audit.record({ action: 'grant.success', outcome: 'success' }).catch((e: unknown) => e);
      // an outage of the trail, like any other outage: 503 with Retry-After, and nothing granted
      expect(err).toMatchObject({ status: 503, code: 'temporarily_unavailable', headers: { 'Retry-After': '5' } });
      expect(err).toBeInstanceOf(TemporarilyUnavailable);
      await expect(audited({ audit }, { action: 'grant.success' }, async () => 'tokens')).rejects.toBeInstanceOf(TemporarilyUnavailable);
      // a denial stays a denial
      const denied = new AccessDenied();
      await expect(audited({ audit }, { action: 'grant.success', fields: { subject: 'u-1' } }, async () => Promise.reject(denied))).rejects.toBe(denied);
      await expect(audit.ready()).rejects.toThrow();
      expect(failures).toEqual([
        [1, { service: 'pas' }],
        [1, { service: 'pas' }],
        [1, { service: 'pas' }],
      ]);

      await proxy.restore();
      expect(await audit.record({ action: 'grant.success', outcome: 'success', tenant: 'acme' })).toMatchObject({ seq: before + 1 });
      const events = (await readSince(as('audit'), 'pas', before - 1)).events;
      expect(events.map((e) => e.seq)).toEqual([before, before + 1]);
    } finally {
      await proxy.cut();
    }
  });
});
