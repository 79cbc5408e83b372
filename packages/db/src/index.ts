export { DbUnavailableError, identifier, type Db, type Queryable } from './db.ts';
export { migrate, pendingMigrations, readMigrations } from './migrate.ts';
export { openPostgres } from './postgres.ts';
export { openPglite } from './pglite.ts';
export { openDatabase, serviceRole, serviceRoleUrl } from './open.ts';
