import type { Command } from 'commander';
import { DbUnavailableError, migrate, openPostgres, pendingMigrations, readMigrations, type Db } from '@keyway/db';
import { z } from 'zod';
import type { CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { parseArg } from '../input.ts';

const DatabaseUrl = z
  .string({ error: 'set --database-url or DATABASE_URL' })
  .url()
  .refine((url) => /^postgres(ql)?:$/.test(new URL(url).protocol), 'a postgres:// URL');

/** The database as a role that may change its shape (owner or admin), never a service's own role. */
async function withDatabase<T>(url: string | undefined, use: (db: Db) => Promise<T>): Promise<T> {
  const db = openPostgres({ url: parseArg(DatabaseUrl, url ?? process.env.DATABASE_URL, 'database URL'), max: 1 });
  try {
    return await use(db);
  } catch (err) {
    if (err instanceof DbUnavailableError) throw new CliError(`the database cannot be reached: ${err.message}`, EXIT.unavailable);
    throw err;
  } finally {
    await db.close();
  }
}

export function register(program: Command, context: CliContext): void {
  const db = program.command('db').description('the system of record (PostgreSQL): schema migrations');
  const urlOption = ['--database-url <url>', 'postgres:// URL of a role that may migrate (default: DATABASE_URL)'] as const;

  db.command('migrate')
    .description('apply every pending schema migration, in order, once (safe to run while services run, and from several hosts at once)')
    .option(...urlOption)
    .action(async (options: { databaseUrl?: string }) => {
      const { applied } = await withDatabase(options.databaseUrl, (database) => migrate(database));
      context.print({ applied }, () => (applied.length === 0 ? 'The database schema is up to date.' : `Applied ${applied.length} migration(s):\n${applied.map((id) => `  ${id}`).join('\n')}`));
    });

  db.command('status')
    .description('list the migrations and whether each is applied')
    .option(...urlOption)
    .action(async (options: { databaseUrl?: string }) => {
      const all = await readMigrations();
      const pending = new Set(await withDatabase(options.databaseUrl, (database) => pendingMigrations(database, all)));
      const rows = all.map((m) => ({ id: m.id, applied: !pending.has(m.id) }));
      context.print({ migrations: rows }, () => rows.map((r) => `${r.applied ? 'applied' : 'pending'}  ${r.id}`).join('\n'));
    });
}
