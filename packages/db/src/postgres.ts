import pg from 'pg';
import { classify, type Db, type Queryable, type Row } from './db.ts';

export interface PostgresOptions {
  /** postgres://user@host:port/database, with the service's own role as the user */
  url: string;
  /** most connections this pool opens (default 10) */
  max?: number;
  /** how long a query waits for a connection before it fails as unavailable (default 5 s) */
  connectTimeoutMs?: number;
  /** a statement running longer than this is cancelled (default 30 s) */
  statementTimeoutMs?: number;
  onError?: (err: Error) => void;
}

const run = async <R extends Row>(client: pg.Pool | pg.PoolClient, sql: string, params?: readonly unknown[]): Promise<R[]> => {
  try {
    return (await client.query<R>(sql, params as unknown[] | undefined)).rows;
  } catch (err) {
    throw classify(err);
  }
};

/**
 * A connection pool. A lost server is not fatal: idle connections that break are dropped (the
 * pool's 'error' event goes to onError), calls fail with DbUnavailableError while it is away, and the
 * next call after it returns opens a fresh connection, so services recover without a restart.
 */
export function openPostgres(options: PostgresOptions): Db {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  pool.on('error', (err) => options.onError?.(err));
  return {
    kind: 'postgres',
    query: (sql, params) => run(pool, sql, params),
    exec: async (sql) => void (await run(pool, sql)),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw classify(err);
      }
      let broken = false;
      try {
        await run(client, 'BEGIN');
        const result = await fn({ query: (sql, params) => run(client, sql, params), exec: async (sql) => void (await run(client, sql)) });
        await run(client, 'COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw classify(err);
      } finally {
        // a connection whose rollback failed is not given back for reuse
        client.release(broken);
      }
    },
    async ping() {
      await run(pool, 'SELECT 1');
    },
    close: () => pool.end(),
  };
}
