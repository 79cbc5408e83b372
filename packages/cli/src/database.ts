import { DbUnavailableError, openPostgres, type Db } from '@keyway/db';
import { z } from 'zod';
import { CliError, EXIT } from './exit-codes.ts';
import { parseArg } from './input.ts';

const DatabaseUrl = z
  .string({ error: 'set --database-url or DATABASE_URL' })
  .url()
  .refine((url) => /^postgres(ql)?:$/.test(new URL(url).protocol), 'a postgres:// URL');

/**
 * Runs `use` on one connection to the PostgreSQL `url` names (checked first: exit 2), closed after;
 * a database out of reach is exit 6, like any service that cannot be reached.
 */
export async function withDatabase<T>(url: string | undefined, name: string, use: (db: Db) => Promise<T>): Promise<T> {
  const db = openPostgres({ url: parseArg(DatabaseUrl, url, name), max: 1 });
  try {
    return await use(db);
  } catch (err) {
    if (err instanceof DbUnavailableError) throw new CliError(`the database cannot be reached: ${err.message}`, EXIT.unavailable);
    throw err;
  } finally {
    await db.close();
  }
}
