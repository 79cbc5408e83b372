import { describe, expect, it } from 'vitest';
import { classify, DbUnavailableError } from './db.ts';
import { migrate, pendingMigrations, readMigrations } from './migrate.ts';
import { openPglite } from './pglite.ts';
import { openPostgres } from './postgres.ts';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('classify: an outage is DbUnavailableError (503), anything else keeps its type', () => {
  it.each([
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })],
    ['server shutting down (57P01)', pgError('57P01')],
    ['server starting up (57P03)', pgError('57P03')],
    ['too many connections (53300)', pgError('53300')],
    ['connection lost mid-query', new Error('Connection terminated unexpectedly')],
    ['read-only standby (25006)', pgError('25006')],
  ])('%s', (_name, err) => {
    expect(classify(err)).toBeInstanceOf(DbUnavailableError);
  });

  it.each([
    ['permission denied (42501)', pgError('42501')],
    ['unique violation (23505)', pgError('23505')],
    ['syntax error (42601)', pgError('42601')],
  ])('%s', (_name, err) => {
    expect(classify(err)).toBe(err);
  });

  it('a pool pointed at a closed port answers DbUnavailableError quickly, not a hang', async () => {
    const db = openPostgres({ url: 'postgres://postgres@127.0.0.1:1/postgres', connectTimeoutMs: 2000 });
    const started = Date.now();
    await expect(db.ping()).rejects.toBeInstanceOf(DbUnavailableError);
    expect(Date.now() - started).toBeLessThan(3000);
    await db.close();
  });
});

describe('migrate on the embedded PGlite', () => {
  it('applies every migration once, in order; a second run applies none', async () => {
    const db = await openPglite();
    const all = (await readMigrations()).map((m) => m.id);
    expect(all).toEqual([...all].sort());
    expect(await pendingMigrations(db)).toEqual(all);
    expect((await migrate(db)).applied).toEqual(all);
    expect((await migrate(db)).applied).toEqual([]);
    expect(await pendingMigrations(db)).toEqual([]);
    await db.close();
  }, 60_000);

  it('refuses to run when an applied migration was edited afterwards', async () => {
    const db = await openPglite();
    await migrate(db, [{ id: '0001_a', sql: 'CREATE TABLE public.a (x int);' }]);
    await expect(migrate(db, [{ id: '0001_a', sql: 'CREATE TABLE public.a (x bigint);' }])).rejects.toThrow(/0001_a was changed after it was applied/);
    await db.close();
  }, 60_000);

  it('a failing migration leaves nothing half applied: neither its changes nor its ledger row', async () => {
    const db = await openPglite();
    const broken = [
      { id: '0001_ok', sql: 'CREATE TABLE public.a (x int);' },
      { id: '0002_broken', sql: 'CREATE TABLE public.b (x int); SELECT no_such_function();' },
    ];
    await expect(migrate(db, broken)).rejects.toThrow(/no_such_function/);
    expect(await pendingMigrations(db, broken)).toEqual(['0002_broken']);
    expect(await db.query("SELECT to_regclass('public.b') IS NULL AS absent")).toEqual([{ absent: true }]);
    await db.close();
  }, 60_000);
});
