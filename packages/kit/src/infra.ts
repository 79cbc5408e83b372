import { dirname } from 'node:path';
import { createBroker, type Broker, type CreateBrokerOptions, type TopicRef } from '@keyway/broker';
import { migrate, openDatabase, pendingMigrations, serviceRole, type Db } from '@keyway/db';
import { ensureDevKek, Keyring } from '@keyway/seal';
import { createPgStore, createStore, type RecordStore } from '@keyway/store';
import { ConfigError } from './config.ts';
import type { InfrastructureKey, TlsSource } from './config.ts';
import type { Logger } from './logger.ts';
import { keyspacePrefix } from './redis-acl.ts';
import type { Closer } from './shutdown.ts';

/**
 * What a service's build takes besides its parsed config: what cannot come from the environment,
 * and what an in-process composition (several services in one process) lends it instead of what it
 * would open itself. Lent handles are closed by the lender, never by the service.
 */
export interface ServiceInfra {
  logger: Logger;
  /** this service's certificate, key and CA bundle as they are now (re-read while running), and its trust domain */
  tls: TlsSource;
  /** the one embedded broker of a process running several services, so change events reach them all */
  broker?: Broker;
  /** the one embedded PostgreSQL (PGlite) of a process running several services, migrated by its lender */
  database?: Db;
  /** the database the service appends its audit stream to, when not its own (a fault test cuts only the trail) */
  auditDatabase?: Db;
  /** where change events travel (default CHANGE_EVENTS_TOPIC): compositions sharing one RabbitMQ each use their own */
  changeEventsTopic?: TopicRef;
  /** this service's RabbitMQ connection name (default keyway-<service>) */
  connectionName?: string;
}

const EMBEDDED: Record<InfrastructureKey, string> = {
  REDIS_URL: 'REDIS_URL unset: in-memory store private to this process; its state is lost on exit and no other instance or service sees it',
  AMQP_URL: 'AMQP_URL unset: in-memory broker private to this process; change events and revocation do not reach other services, and queued batches are lost on exit',
  DATABASE_URL: 'DATABASE_URL unset: embedded PostgreSQL (PGlite) private to this process; no other instance or service sees its records, and they are lost on exit unless DATABASE_DIR is set',
  KEYWAY_KEK_FILE: 'KEYWAY_KEK_FILE unset: keys are sealed under a development keyring next to the dev CA; whoever reads that directory can unseal them',
};

/**
 * The system of record as this service's role sees it. A lent database (one PGlite shared in
 * process) is migrated by its lender; a private embedded one is migrated here; a real PostgreSQL
 * is migrated by `keyway db migrate` with an admin role, so a service whose schema is behind
 * refuses to start (exit 78) rather than run against tables it does not know.
 */
async function openRecords(config: { DATABASE_URL?: string; DATABASE_DIR?: string }, onError: (err: Error) => void): Promise<Db> {
  const db = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATABASE_DIR, onError });
  if (db.kind === 'pglite') {
    await migrate(db);
    return db;
  }
  const pending = await pendingMigrations(db).catch(async (err: unknown) => {
    await db.close();
    throw err;
  });
  if (pending.length > 0) {
    await db.close();
    throw new ConfigError([`DATABASE_URL: the database schema is behind (pending: ${pending.join(', ')}); run \`keyway db migrate\` with an admin role first`]);
  }
  return db;
}

/**
 * The keyring that seals this service's keys at rest: KEYWAY_KEK_FILE, or (only KEYWAY_ENV=development
 * gets this far, see requiredInProduction) a development one next to the dev CA, made when absent.
 */
export async function serviceKeyring(config: { KEYWAY_KEK_FILE?: string; TLS_CA_FILE: string }, logger: Logger): Promise<Keyring> {
  if (config.KEYWAY_KEK_FILE) return Keyring.open(config.KEYWAY_KEK_FILE);
  logger.warn(EMBEDDED.KEYWAY_KEK_FILE);
  return Keyring.open(await ensureDevKek(dirname(config.TLS_CA_FILE)));
}

/**
 * A service's store, database and broker: opened from its config (REDIS_URL, AMQP_URL,
 * STORE_PREFIX) unless lent by infra. `close` closes what was opened here, last opened first. An
 * unset URL (only KEYWAY_ENV=development gets this far, see requiredInProduction) opens the embedded
 * stand-in and warns once, naming what is lost.
 */
type ResourceConfig = { REDIS_URL?: string; AMQP_URL?: string; DATABASE_URL?: string; DATABASE_DIR?: string; STORE_PREFIX: string };

export function serviceResources(service: string, config: ResourceConfig, infra: ServiceInfra) {
  const close: Closer[] = [];
  const warned = new Set<InfrastructureKey>();
  const embedded = (key: 'REDIS_URL' | 'AMQP_URL' | 'DATABASE_URL') => {
    if (config[key] || warned.has(key)) return;
    warned.add(key);
    infra.logger.warn(EMBEDDED[key]);
  };
  const opened = <T extends { close(): unknown }>(handle: T): T => {
    close.unshift(() => handle.close());
    return handle;
  };
  const keyspace = async (name: string) => {
    embedded('REDIS_URL');
    return opened(await createStore({ redisUrl: config.REDIS_URL, prefix: keyspacePrefix(config.STORE_PREFIX, name), onError: (err) => infra.logger.warn('store.error', { err }) }));
  };
  let opening: Promise<Db> | undefined;
  const database = (): Promise<Db> => {
    if (infra.database) return Promise.resolve(infra.database);
    embedded('DATABASE_URL');
    opening ??= openRecords(config, (err) => infra.logger.warn('database.error', { err })).then(opened);
    return opening;
  };
  const resources = {
    close,
    /** the system of record (PostgreSQL or the embedded PGlite), opened once per service */
    database,
    /** the service's durable records (the system of record: its own schema, its own role), under `${STORE_PREFIX}:<service>:` */
    records: async (): Promise<RecordStore> =>
      opened(
        createPgStore({
          db: await database(),
          schema: serviceRole(service),
          prefix: keyspacePrefix(config.STORE_PREFIX, service),
          onError: (err) => infra.logger.warn('records.sweep_failed', { err }),
        }),
      ),
    /** the service's hot, expiring state (Redis), under `${STORE_PREFIX}:<service>:` */
    store: () => keyspace(service),
    /** where the service's audit stream is appended (keyway_audit.events, 0003_audit.sql): its own database, as its own role */
    auditDatabase: (): Promise<Db> => (infra.auditDatabase ? Promise.resolve(infra.auditDatabase) : database()),
    broker: async (options: Omit<CreateBrokerOptions, 'amqpUrl' | 'connectionName' | 'onError'> = {}) => {
      if (infra.broker) return infra.broker;
      embedded('AMQP_URL');
      return opened(
        await createBroker({ ...options, amqpUrl: config.AMQP_URL, connectionName: infra.connectionName ?? `keyway-${service}`, onError: (err) => infra.logger.warn('broker.error', { err }) }),
      );
    },
  };
  return resources;
}

/**
 * What every service that keeps a trail and follows or publishes change events hands its createApp
 * (entitlement, PAS, PAC): its records, its store, the database its audit stream goes to, the broker, the change-event topic and its
 * logger, with `close` for what was opened here.
 */
export async function changeEventServiceDeps(service: string, config: ResourceConfig, infra: ServiceInfra) {
  const resources = serviceResources(service, config, infra);
  const deps = {
    records: await resources.records(),
    store: await resources.store(),
    auditDb: await resources.auditDatabase(),
    broker: await resources.broker(),
    changeEventsTopic: infra.changeEventsTopic,
    logger: infra.logger,
  };
  return { deps, close: resources.close };
}
