/**
 * The system of record's one interface: PostgreSQL through `pg`, or the embedded PGlite (the same
 * engine compiled to WebAssembly) when no DATABASE_URL is set. Callers write plain SQL with `$n`
 * parameters and schema-qualified table names, so one statement runs on both.
 */
export type Row = Record<string, unknown>;

export interface Queryable {
  query<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /** runs several statements without parameters (a migration file) */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** runs `fn` in one transaction: committed when it resolves, rolled back when it throws */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** throws DbUnavailableError when the database does not answer (for /readyz) */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The database cannot be reached or cannot serve right now (refused, reset, shutting down, starting
 * up, out of connections). Callers map it to 503 temporarily_unavailable; any other error is a bug
 * or a constraint and keeps its own type.
 */
export class DbUnavailableError extends Error {
  override readonly name = 'DbUnavailableError';
  readonly code = 'ERR_DB_UNAVAILABLE';
}

/**
 * SQLSTATE classes and codes that mean "not now" rather than "this statement is wrong": connection
 * exceptions (08), insufficient resources (53), operator intervention such as a shutdown or a restart
 * (57P01-57P03), a read-only standby (25006), and a transaction PostgreSQL rolled back to break a
 * deadlock or a serialization conflict (40P01, 40001), which the caller may simply try again.
 */
const UNAVAILABLE_STATES = /^(08|53|57P0[1-3]$|25006$|40001$|40P01$)/;
const UNAVAILABLE_SYSCALLS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

const isUnavailable = (err: unknown): boolean => {
  if (err instanceof DbUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_STATES.test(code) || UNAVAILABLE_SYSCALLS.has(code))) return true;
  // pg reports a connection lost mid-query, a pool timeout and a closed pool with plain Errors
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Cannot use a pool after calling end|Client has encountered a connection error/i.test(err.message);
};

/** `err` as DbUnavailableError when it means the database is out of reach, otherwise unchanged. */
export function classify(err: unknown): unknown {
  if (err instanceof DbUnavailableError || !isUnavailable(err)) return err;
  return new DbUnavailableError(`database unavailable: ${(err as Error).message}`, { cause: err });
}

/** A PostgreSQL identifier we put into SQL text ourselves (schema names): letters, digits, underscore. */
export function identifier(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a safe SQL identifier: ${name}`);
  return name;
}
