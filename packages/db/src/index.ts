export { classify, DbUnavailableError, identifier, isUnavailable, type Db, type Queryable, type Row } from './db.ts';
export { migrate, pendingMigrations, readMigrations, type Migration } from './migrate.ts';
export { openPostgres, type PostgresOptions } from './postgres.ts';
export { openPglite } from './pglite.ts';
export { openDatabase, serviceRole, serviceRoleUrl, type OpenDatabaseOptions } from './open.ts';
