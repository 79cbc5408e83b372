import type { Db } from './db.ts';
import { openPglite } from './pglite.ts';
import { openPostgres } from './postgres.ts';

export interface OpenDatabaseOptions {
  /** the service's PostgreSQL (its own role as user); unset = the embedded PGlite */
  url?: string | undefined;
  /** where the embedded database keeps its files (unset: in memory) */
  dataDir?: string | undefined;
  onError?: (err: Error) => void;
}

export const openDatabase = (options: OpenDatabaseOptions): Promise<Db> =>
  options.url ? Promise.resolve(openPostgres({ url: options.url, onError: options.onError })) : openPglite({ dataDir: options.dataDir });

/** A service's PostgreSQL role, which is also the name of its schema (0001_service_roles.sql). */
export const serviceRole = (service: string): string => `keyway_${service}`;

/** `url` (an admin's or owner's) with its user swapped for the service's own role, and no password: for trust-auth hosts (development, tests). */
export function serviceRoleUrl(url: string, service: string): string {
  const parsed = new URL(url);
  parsed.username = serviceRole(service);
  parsed.password = '';
  return parsed.toString();
}
