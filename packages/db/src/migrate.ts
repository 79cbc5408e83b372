import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import type { Db } from './db.ts';

/** The schema changes, in order: `NNNN_name.sql` files applied once each, in name order. */
const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url);

const MIGRATION_FILE = /^\d{4}_[a-z0-9_]+\.sql$/;

/** Any number that no other advisory lock of ours uses: migrations of one database run one at a time. */
const MIGRATION_LOCK = 72_657_001;

export interface Migration {
  id: string;
  sql: string;
}

export async function readMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((name) => MIGRATION_FILE.test(name)).sort();
  return Promise.all(names.map(async (name) => ({ id: name.replace(/\.sql$/, ''), sql: await readFile(new URL(name, dir), 'utf8') })));
}

const LEDGER = `CREATE TABLE IF NOT EXISTS public.keyway_migrations (id text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;

/** A migration is applied once and never edited after: its text's SHA-256 is kept with it and compared on every run. */
const checksum = (migration: Migration) => createHash('sha256').update(migration.sql).digest('hex');

/** The ids of the migrations not yet applied to this database. */
export async function pendingMigrations(db: Db, migrations?: Migration[]): Promise<string[]> {
  const all = migrations ?? (await readMigrations());
  const [ledger] = await db.query<{ exists: boolean }>(`SELECT to_regclass('public.keyway_migrations') IS NOT NULL AS exists`);
  if (!ledger?.exists) return all.map((m) => m.id);
  const applied = new Set((await db.query<{ id: string }>('SELECT id FROM public.keyway_migrations')).map((r) => r.id));
  return all.filter((m) => !applied.has(m.id)).map((m) => m.id);
}

/**
 * Applies every pending migration, each in its own transaction with its ledger row, under an
 * advisory lock so that two instances starting at once apply each migration once. Needs a role that
 * may create roles and schemas (the database owner or an admin), never a service's own role.
 */
export async function migrate(db: Db, migrations?: Migration[]): Promise<{ applied: string[] }> {
  const all = migrations ?? (await readMigrations());
  const applied: string[] = [];
  for (const migration of all) {
    const done = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await tx.query(LEDGER);
      const [seen] = await tx.query<{ checksum: string }>('SELECT checksum FROM public.keyway_migrations WHERE id = $1', [migration.id]);
      if (seen) {
        if (seen.checksum !== checksum(migration)) throw new Error(`migration ${migration.id} was changed after it was applied: write a new migration instead`);
        return false;
      }
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO public.keyway_migrations (id, checksum) VALUES ($1, $2)', [migration.id, checksum(migration)]);
      return true;
    });
    if (done) applied.push(migration.id);
  }
  return { applied };
}
