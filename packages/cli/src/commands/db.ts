import type { Command } from 'commander';
import { migrate, pendingMigrations, readMigrations } from '@keyway/db';
import { envValue } from '@keyway/kit';
import type { CliContext } from '../context.ts';
import { withDatabase } from '../database.ts';

export function register(program: Command, context: CliContext): void {
  const db = program.command('db').description('the system of record (PostgreSQL): schema migrations');
  const urlOption = ['--database-url <url>', 'postgres:// URL of a role that may migrate (default: DATABASE_URL)'] as const;

  db.command('migrate')
    .description('apply every pending schema migration, in order, once (safe to run while services run, and from several hosts at once)')
    .option(...urlOption)
    .action(async (options: { databaseUrl?: string }) => {
      const { applied } = await withDatabase(options.databaseUrl ?? envValue(process.env, 'DATABASE_URL'), 'database URL', (database) => migrate(database));
      context.print({ applied }, () => (applied.length === 0 ? 'The database schema is up to date.' : `Applied ${applied.length} migration(s):\n${applied.map((id) => `  ${id}`).join('\n')}`));
    });

  db.command('status')
    .description('list the migrations and whether each is applied')
    .option(...urlOption)
    .action(async (options: { databaseUrl?: string }) => {
      const all = await readMigrations();
      const pending = new Set(await withDatabase(options.databaseUrl ?? envValue(process.env, 'DATABASE_URL'), 'database URL', (database) => pendingMigrations(database, all)));
      const rows = all.map((m) => ({ id: m.id, applied: !pending.has(m.id) }));
      context.print({ migrations: rows }, () => rows.map((r) => `${r.applied ? 'applied' : 'pending'}  ${r.id}`).join('\n'));
    });
}
