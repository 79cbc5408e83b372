import { dirname } from 'node:path';
import { createBroker, type Broker, type CreateBrokerOptions, type TopicRef } from '@keyway/broker';
import { ensureDevKek, Keyring } from '@keyway/seal';
import { createStore, type Store } from '@keyway/store';
import type { InfrastructureKey, TlsMaterial } from './config.ts';
import type { Logger } from './logger.ts';
import type { Closer } from './shutdown.ts';

/**
 * What a service's build takes besides its parsed config: what cannot come from the environment,
 * and what an in-process composition (several services in one process) lends it instead of what it
 * would open itself. Lent handles are closed by the lender, never by the service.
 */
export interface ServiceInfra {
  logger: Logger;
  tls: TlsMaterial;
  /** the one embedded broker of a process running several services, so change events reach them all */
  broker?: Broker;
  /** the audit keyspace every service appends to (the embedded store is one keyspace per instance) */
  auditStore?: Store;
  /** where change events travel (default CHANGE_EVENTS_TOPIC): compositions sharing one RabbitMQ each use their own */
  changeEventsTopic?: TopicRef;
  /** this service's RabbitMQ connection name (default keyway-<service>) */
  connectionName?: string;
}

const EMBEDDED: Record<InfrastructureKey, string> = {
  REDIS_URL: 'REDIS_URL unset: in-memory store private to this process; its state is lost on exit and no other instance or service sees it',
  AMQP_URL: 'AMQP_URL unset: in-memory broker private to this process; change events and revocation do not reach other services, and queued batches are lost on exit',
  KEYWAY_KEK_FILE: 'KEYWAY_KEK_FILE unset: keys are sealed under a development keyring next to the dev CA; whoever reads that directory can unseal them',
};

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
 * A service's store, audit keyspace and broker: opened from its config (REDIS_URL, AMQP_URL,
 * STORE_PREFIX) unless lent by infra. `close` closes what was opened here, last opened first. An
 * unset URL (only KEYWAY_ENV=development gets this far, see requiredInProduction) opens the embedded
 * stand-in and warns once, naming what is lost.
 */
export function serviceResources(service: string, config: { REDIS_URL?: string; AMQP_URL?: string; STORE_PREFIX: string }, infra: ServiceInfra) {
  const close: Closer[] = [];
  const warned = new Set<InfrastructureKey>();
  const embedded = (key: 'REDIS_URL' | 'AMQP_URL') => {
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
    return opened(await createStore({ redisUrl: config.REDIS_URL, prefix: `${config.STORE_PREFIX}:${name}:`, onError: (err) => infra.logger.warn('store.error', { err }) }));
  };
  return {
    close,
    /** the service's own keys, under `${STORE_PREFIX}:<service>:` */
    store: () => keyspace(service),
    /** one audit keyspace for every service (packages/audit layout), so the trail is queried across services */
    auditStore: async () => infra.auditStore ?? keyspace('audit'),
    broker: async (options: Omit<CreateBrokerOptions, 'amqpUrl' | 'connectionName' | 'onError'> = {}) => {
      if (infra.broker) return infra.broker;
      embedded('AMQP_URL');
      return opened(
        await createBroker({ ...options, amqpUrl: config.AMQP_URL, connectionName: infra.connectionName ?? `keyway-${service}`, onError: (err) => infra.logger.warn('broker.error', { err }) }),
      );
    },
  };
}

/**
 * What every service that keeps a trail and follows or publishes change events hands its createApp
 * (entitlement, PAS, PAC): its store, the audit keyspace, the broker, the change-event topic and its
 * logger, with `close` for what was opened here.
 */
export async function changeEventServiceDeps(service: string, config: { REDIS_URL?: string; AMQP_URL?: string; STORE_PREFIX: string }, infra: ServiceInfra) {
  const resources = serviceResources(service, config, infra);
  const deps = {
    store: await resources.store(),
    auditStore: await resources.auditStore(),
    broker: await resources.broker(),
    changeEventsTopic: infra.changeEventsTopic,
    logger: infra.logger,
  };
  return { deps, close: resources.close };
}
