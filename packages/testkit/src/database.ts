import { randomUUID } from 'node:crypto';
import { migrate, openPostgres, serviceRoleUrl, type Db } from '@keyway/db';

/** The machine's PostgreSQL (trust auth on 127.0.0.1), as its admin: tests make a database of their own on it. */
export const POSTGRES_ADMIN_URL = process.env.KEYWAY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  name: string;
  /** the migrator's URL for this database (the cluster admin) */
  adminUrl: string;
  /** the URL a service connects with: its own role (0001_service_roles.sql) on this database */
  serviceUrl(service: string): string;
  drop(): Promise<void>;
}

const withDatabase = (base: string, database: string): string => {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
};

/** A fresh, migrated database of its own for a test file or suite, dropped (connections and all) by drop(). */
export async function createTestDatabase(adminUrl: string = POSTGRES_ADMIN_URL): Promise<TestDatabase> {
  const name = `keyway_t_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const admin = openPostgres({ url: adminUrl, max: 1 });
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.close();
  }
  const db = openPostgres({ url: withDatabase(adminUrl, name), max: 1 });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
  return {
    name,
    adminUrl: withDatabase(adminUrl, name),
    serviceUrl: (service) => serviceRoleUrl(withDatabase(adminUrl, name), service),
    async drop() {
      const dropper = openPostgres({ url: adminUrl, max: 1 });
      try {
        await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await dropper.close();
      }
    },
  };
}

export interface TestDatabaseConnections {
  database: TestDatabase;
  /** a pool as the cluster admin, who may rewrite anything (tests that tamper, tests that clean up) */
  admin: Db;
  /** the pool of a service's role, one per service */
  as(service: string): Db;
  /** a pool of the service's role of the caller's own, to close (a database gone away) */
  open(service: string): Db;
  /** closes the pools and drops the database */
  close(): Promise<void>;
}

/** A fresh migrated database with a pool per role, for a test file. */
export async function connectTestDatabase(): Promise<TestDatabaseConnections> {
  const database = await createTestDatabase();
  const pools = new Map<string, Db>();
  const pool = (key: string, url: string): Db => {
    const open = pools.get(key) ?? openPostgres({ url, max: 4 });
    pools.set(key, open);
    return open;
  };
  return {
    database,
    admin: pool('', database.adminUrl),
    as: (service) => pool(service, database.serviceUrl(service)),
    open: (service) => openPostgres({ url: database.serviceUrl(service), max: 2 }),
    async close() {
      for (const db of pools.values()) await db.close();
      await database.drop();
    },
  };
}
