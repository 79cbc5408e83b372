import { PGlite } from '@electric-sql/pglite';
import { classify, DbUnavailableError, type Db, type Queryable, type Row } from './db.ts';

/**
 * The embedded database used when DATABASE_URL is unset (README command 1): PostgreSQL itself,
 * compiled to WebAssembly, in this process. With `dataDir` it keeps its files there across restarts;
 * without, it lives in memory. One instance serves every service of the process (each in its own
 * schema), as one PostgreSQL server would; it runs one statement at a time.
 */
export async function openPglite(options: { dataDir?: string } = {}): Promise<Db> {
  const lite = await PGlite.create(options.dataDir);
  let closed = false;
  const live = () => {
    if (closed) throw new DbUnavailableError('embedded database is closed');
  };
  const on = (q: Pick<PGlite, 'query' | 'exec'>): Queryable => ({
    async query<R extends Row>(sql: string, params?: readonly unknown[]) {
      live();
      try {
        return (await q.query<R>(sql, params as unknown[] | undefined)).rows;
      } catch (err) {
        throw classify(err);
      }
    },
    async exec(sql: string) {
      live();
      try {
        await q.exec(sql);
      } catch (err) {
        throw classify(err);
      }
    },
  });
  const self = on(lite);
  return {
    kind: 'pglite',
    query: self.query,
    exec: self.exec,
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      live();
      return lite.transaction((tx) => fn(on(tx)));
    },
    async ping() {
      await self.query('SELECT 1');
    },
    async close() {
      if (closed) return;
      closed = true;
      await lite.close();
    },
  };
}
