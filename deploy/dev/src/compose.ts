import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAudit, AuditEnv } from '@keyway/audit-service';
import { createBroker, type Broker, type TopicRef } from '@keyway/broker';
import { migrate, openPglite, type Db } from '@keyway/db';
import { buildEntitlement, EntitlementEnv } from '@keyway/entitlement';
import { buildIdp, IdpEnv } from '@keyway/idp';
import { closeInOrder, openTls, parseConfig, serveTls, serverTlsOptions, sharedConfig, type Closer, type Logger, type ServiceInfra } from '@keyway/kit';
import { buildPac, PacEnv } from '@keyway/pac';
import { buildPas, PasEnv } from '@keyway/pas';
import { buildReleases, ReleasesEnv } from '@keyway/releases';
import { ensureDevKek } from '@keyway/seal';
import type { Store } from '@keyway/store';
import { ensureDevPki, type DevPki, type TlsSource, type WatchedTls } from '@keyway/tls';
import { buildTopic, topicBrokerOptions, TopicEnv } from '@keyway/topic';
import { z } from 'zod';

export const SERVICES = ['idp', 'entitlement', 'pas', 'pac', 'topic', 'audit', 'releases'] as const;
export type ServiceName = (typeof SERVICES)[number];
/**
 * Every certificate an in-process suite uses: one per service, plus the operator caller, plus the
 * releases service's (it asks the entitlement service about release rights; ensureDevPki makes each name once).
 */
export const PKI_NAMES = [...SERVICES, 'releases', 'operator'] as const;

type Env = Record<string, string | undefined>;

/**
 * The browser client the dev suite registers at PAS (BROWSER_CLIENTS) for the releases site (issue
 * 13), at the port the launcher gives it (KEYWAY_PORT_BASE + 6). Tests drive PAS's code flow with it
 * and read the redirect without following it.
 */
export const RELEASES_CLIENT = {
  client_id: 'keyway-releases',
  client_name: 'Keyway releases',
  redirect_uri: 'https://localhost:8447/oauth2/callback',
  scope: 'releases',
} as const;
/**
 * The releases client as PAS registers it for a composition: the launcher's fixed address, and the
 * releases service's own callback where it listens elsewhere (a test suite's free port), so that its
 * browser login completes there too.
 */
const browserClients = (releasesUrl: string) =>
  JSON.stringify([
    {
      client_id: RELEASES_CLIENT.client_id,
      client_name: RELEASES_CLIENT.client_name,
      redirect_uris: [...new Set([RELEASES_CLIENT.redirect_uri, `${releasesUrl}/oauth2/callback`])],
      scope: RELEASES_CLIENT.scope,
    },
  ]);

export interface ComposeOptions {
  /**
   * where the development CA and certificates are kept; made or renewed when needed (@keyway/tls),
   * re-read by the running services every TLS_RELOAD_SEC (env), naming spiffe://<TRUST_DOMAIN (env)>/<service>
   */
  pkiDir: string;
  /** lifetime of the service certificates made here, in hours (default 12) */
  certHours?: number;
  /** default 127.0.0.1 */
  host?: string;
  /** default 0: any free port */
  ports?: Partial<Record<ServiceName, number>>;
  /** the environment every service reads (REDIS_URL, AMQP_URL, STORE_PREFIX, knobs); URLs, ports and certificates are filled in */
  env?: Env;
  /** per service, over env */
  serviceEnv?: Partial<Record<ServiceName, Env>>;
  logger: (service: ServiceName) => Logger;
  /** lent to the services that publish or follow change events (see ServiceInfra) */
  changeEventsTopic?: TopicRef;
  /** RabbitMQ connection names (default keyway-<service>) */
  connectionNames?: Partial<Record<ServiceName, string>>;
  /**
   * The system of record: each service connects with `serviceUrl(service)` (its own role) to a
   * database migrated beforehand. Unset: one embedded PostgreSQL (PGlite) for every service, kept in
   * `embeddedDir` (in memory when that is unset too), migrated here.
   */
  database?: { serviceUrl: (service: ServiceName) => string } | { embeddedDir?: string };
  /** opens the database a service appends its audit stream to, when not its own (e.g. through a fault proxy); closed with the composition */
  auditDatabase?: (service: ServiceName) => Promise<Db>;
  /** the releases service's files (RELEASES_STORAGE_DIR); unset: a temporary folder removed on close */
  releasesStorageDir?: string;
}

export interface Composition {
  urls: Record<ServiceName, string>;
  pki: DevPki;
  /** the one keyring file PAS and PAC seal their keys under (KEYWAY_KEK_FILE, or a development one in the PKI directory) */
  kekFile: string;
  /** the running apps (as request listeners); restart replaces an entry */
  apps: Record<ServiceName, RequestListener>;
  /** each service's own keyspace (hot state), as the service holds it; restart replaces an entry */
  stores: Record<ServiceName, Store>;
  /** the durable records of the services that keep some (system of record), as each holds them; restart replaces an entry */
  records: Partial<Record<ServiceName, Store>>;
  /** the embedded broker and database the services share when AMQP_URL / a database are not given */
  embedded: { broker?: Broker; database?: Db };
  /** stops a service as a deploy would (its listener cuts open connections), stays down downMs, starts it again on the same port */
  restart(service: ServiceName, options?: { downMs?: number }): Promise<void>;
  /**
   * Starts one more topic-service instance on a port of its own, as a scaled-out deploy runs it: the
   * same configuration and store, its own broker connection (with AMQP_URL), INSTANCE_URL its own URL.
   */
  addTopicInstance(): Promise<TopicInstance>;
  /** the releases service's SFTP port (SFTP_PORT), undefined when it is off */
  sftpPort(): number | undefined;
  close(): Promise<void>;
}

/** A further topic-service instance (addTopicInstance). */
interface TopicInstance {
  url: string;
  /** as a deploy stops it: the listener cuts open connections, then its locks go back to their queues and it unlists itself */
  close(): Promise<void>;
}

interface Built {
  app: RequestListener;
  /** the releases service's SFTP port, while it listens */
  sftpPort?: () => number | undefined;
  records?: Store;
  store: Store;
  close: Closer[];
}

/** One PGlite for every service of the process (each in its own schema), migrated before any service opens it. */
async function embeddedDatabase(dir: string | undefined): Promise<Db> {
  const db = await openPglite({ dataDir: dir });
  await migrate(db);
  return db;
}

/** Listens first (port 0 picks one) so every URL is known before the apps that name each other are built. */
async function listenLate(tls: TlsSource, host: string, port: number) {
  let handler: RequestListener = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server: Server = createServer({ ...serverTlsOptions(tls.current()), requestCert: true, rejectUnauthorized: false }, (req: IncomingMessage, res: ServerResponse) => handler(req, res));
  serveTls(server, tls);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    port: actual,
    url: `https://localhost:${actual}`,
    bind: (app: RequestListener) => {
      handler = app;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The seven services in one process over HTTPS on loopback (README command 1 and the cross-service
 * tests): each one's config is parsed from an environment record with its own schema and the service
 * is started by its own build, exactly as its main.ts does. Always KEYWAY_ENV=development; without
 * AMQP_URL the services share one embedded broker (so change events reach them all), without a
 * database one embedded PGlite (so the audit trail, in it, reaches them all).
 */
/** The TLS knobs every service of a composition shares: one trust domain, one reload interval. */
const CompositionTls = z.object({ TRUST_DOMAIN: sharedConfig.TRUST_DOMAIN, TLS_RELOAD_SEC: sharedConfig.TLS_RELOAD_SEC });

export async function compose(options: ComposeOptions): Promise<Composition> {
  const tlsKnobs = parseConfig(CompositionTls, { ...options.env });
  const pki = await ensureDevPki(options.pkiDir, [...PKI_NAMES], { trustDomain: tlsKnobs.TRUST_DOMAIN, leafHours: options.certHours });
  // One keyring for PAS and PAC, like one CA for every service.
  const kekFile = options.env?.KEYWAY_KEK_FILE ?? (await ensureDevKek(options.pkiDir));
  const host = options.host ?? '127.0.0.1';
  const tlsFilesOf = (name: ServiceName) => ({
    TLS_CERT_FILE: join(options.pkiDir, `${name}.crt`),
    TLS_KEY_FILE: join(options.pkiDir, `${name}.key`),
    TLS_CA_FILE: join(options.pkiDir, 'ca.crt'),
  });
  // one logger per service (the launcher's opens a file each)
  const loggers = Object.fromEntries(SERVICES.map((name) => [name, options.logger(name)])) as Record<ServiceName, Logger>;
  // one source per service, for its listener and its clients alike, following its files as they are renewed
  const tlsSources = Object.fromEntries(SERVICES.map((name) => [name, openTls({ ...tlsFilesOf(name), ...tlsKnobs }, loggers[name])])) as Record<ServiceName, WatchedTls>;
  const tlsOf = (name: ServiceName): TlsSource => tlsSources[name];

  const listeners = {} as Record<ServiceName, Awaited<ReturnType<typeof listenLate>>>;
  for (const name of SERVICES) listeners[name] = await listenLate(tlsOf(name), host, options.ports?.[name] ?? 0);
  const urls = Object.fromEntries(SERVICES.map((name) => [name, listeners[name].url])) as Record<ServiceName, string>;
  const releasesStorage = options.releasesStorageDir ? { dir: options.releasesStorageDir, own: false } : { dir: await mkdtemp(join(tmpdir(), 'keyway-releases-')), own: true };

  const wiring: Record<ServiceName, Env> = {
    idp: { PAS_URL: urls.pas, ENTITLEMENT_URL: urls.entitlement },
    entitlement: { PUBLIC_URL: urls.entitlement, IDP_URL: urls.idp, PAS_URL: urls.pas, PAC_URL: urls.pac, AUDIT_URL: urls.audit, TOPIC_URL: urls.topic, RELEASES_URL: urls.releases },
    pas: { PUBLIC_URL: urls.pas, ACCESS_AUDIENCE: urls.pac, RELEASES_AUDIENCE: urls.releases, IDP_URL: urls.idp, ENTITLEMENT_URL: urls.entitlement, AUDIT_URL: urls.audit },
    pac: { PUBLIC_URL: urls.pac, PAS_URL: urls.pas, ENTITLEMENT_URL: urls.entitlement, TOPIC_BASE_URL: urls.topic },
    topic: { PUBLIC_BASE_URL: urls.topic, PAC_URL: urls.pac, ENTITLEMENT_URL: urls.entitlement },
    audit: { PUBLIC_URL: urls.audit, PAS_URL: urls.pas, ENTITLEMENT_URL: urls.entitlement, TOPIC_URL: urls.topic },
    releases: {
      PUBLIC_URL: urls.releases,
      PAS_URL: urls.pas,
      ENTITLEMENT_URL: urls.entitlement,
      RELEASES_CLIENT_ID: RELEASES_CLIENT.client_id,
      RELEASES_STORAGE_DIR: releasesStorage.dir,
      // Debian's clamav-daemon and its clamd.conf (StreamMaxLength 25M) unless the environment names another clamd;
      // with none running, uploads wait as scan_pending (fail closed)
      CLAMD_ADDRESS: options.serviceEnv?.releases?.CLAMD_ADDRESS ?? options.env?.CLAMD_ADDRESS ?? 'unix:/run/clamav/clamd.ctl',
      CLAMD_STREAM_MAX_LENGTH: options.serviceEnv?.releases?.CLAMD_STREAM_MAX_LENGTH ?? options.env?.CLAMD_STREAM_MAX_LENGTH ?? '25M',
      IDP_URL: urls.idp,
      // beside the HTTPS port when the launcher fixes ports; any free one otherwise (suites run side by side)
      SFTP_PORT: options.serviceEnv?.releases?.SFTP_PORT ?? String(options.ports?.releases ? options.ports.releases + 1 : 0),
    },
  };
  const database = options.database;
  const databaseUrlOf = (name: ServiceName): Env => (database && 'serviceUrl' in database ? { DATABASE_URL: database.serviceUrl(name) } : {});
  const envOf = (name: ServiceName): Env => ({
    ...options.env,
    ...databaseUrlOf(name),
    ...(name === 'pas' && { BROWSER_CLIENTS: browserClients(urls.releases) }),
    ...options.serviceEnv?.[name],
    KEYWAY_ENV: 'development',
    HOST: host,
    PORT: String(listeners[name].port),
    ...tlsFilesOf(name),
    KEYWAY_KEK_FILE: kekFile,
    ...wiring[name],
  });
  // every config first: a bad one fails before anything is opened
  const configs = {
    idp: parseConfig(IdpEnv, envOf('idp')),
    entitlement: parseConfig(EntitlementEnv, envOf('entitlement')),
    pas: parseConfig(PasEnv, envOf('pas')),
    pac: parseConfig(PacEnv, envOf('pac')),
    topic: parseConfig(TopicEnv, envOf('topic')),
    audit: parseConfig(AuditEnv, envOf('audit')),
    releases: parseConfig(ReleasesEnv, envOf('releases')),
  };
  const builds: Record<ServiceName, (infra: ServiceInfra) => Promise<Built>> = {
    idp: (infra) => buildIdp(configs.idp, infra),
    entitlement: (infra) => buildEntitlement(configs.entitlement, infra),
    pas: (infra) => buildPas(configs.pas, infra),
    pac: (infra) => buildPac(configs.pac, infra),
    topic: (infra) => buildTopic(configs.topic, infra),
    audit: (infra) => buildAudit(configs.audit, infra),
    releases: (infra) => buildReleases(configs.releases, infra),
  };

  // The topic service declares the subscription queues, so the shared embedded broker has its bounds.
  const embedded = {
    broker: options.env?.AMQP_URL ? undefined : await createBroker(topicBrokerOptions(configs.topic)),
    database: database && 'serviceUrl' in database ? undefined : await embeddedDatabase(database?.embeddedDir),
  };
  const lentAudit: Db[] = [];
  const infraOf = async (name: ServiceName): Promise<ServiceInfra> => {
    const auditDatabase = await options.auditDatabase?.(name);
    if (auditDatabase) lentAudit.push(auditDatabase);
    return {
      logger: loggers[name],
      tls: tlsOf(name),
      broker: embedded.broker,
      database: embedded.database,
      auditDatabase,
      changeEventsTopic: options.changeEventsTopic,
      connectionName: options.connectionNames?.[name],
    };
  };

  /** closers of the instances addTopicInstance started */
  const extraTopics: Array<() => Promise<void>> = [];
  const built = {} as Record<ServiceName, Built>;
  const infra = {} as Record<ServiceName, ServiceInfra>;
  const apps = {} as Record<ServiceName, RequestListener>;
  const stores = {} as Record<ServiceName, Store>;
  const records: Partial<Record<ServiceName, Store>> = {};
  const start = async (name: ServiceName) => {
    built[name] = await builds[name](infra[name]);
    apps[name] = built[name].app;
    stores[name] = built[name].store;
    records[name] = built[name].records;
  };
  // as runService: the listener stops accepting first, then what the build opened closes in order
  const stop = (name: ServiceName) => closeInOrder(built[name].close, infra[name].logger);
  const closeAll = async () => {
    // the audit exporter first: it publishes through the topic service, which would be gone mid-publish
    if (built.audit) await stop('audit');
    await Promise.all(SERVICES.map((name) => listeners[name].close()));
    await Promise.all(SERVICES.filter((name) => name !== 'audit' && built[name]).map(stop));
    for (const handle of [embedded.broker, ...lentAudit, embedded.database]) await handle?.close();
    if (releasesStorage.own) await rm(releasesStorage.dir, { recursive: true, force: true });
    for (const source of Object.values(tlsSources)) source.close();
  };
  try {
    for (const name of SERVICES) {
      infra[name] = await infraOf(name);
      await start(name);
      listeners[name].bind(apps[name]);
    }
  } catch (err) {
    await closeAll();
    throw err;
  }

  return {
    urls,
    pki,
    kekFile,
    apps,
    stores,
    records,
    embedded,
    async restart(name, { downMs = 1000 } = {}) {
      await listeners[name].close();
      await stop(name);
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await start(name);
      listeners[name] = await listenLate(tlsOf(name), host, listeners[name].port);
      listeners[name].bind(apps[name]);
    },
    async addTopicInstance() {
      const listener = await listenLate(tlsOf('topic'), host, 0);
      const config = { ...configs.topic, PORT: listener.port, INSTANCE_URL: listener.url };
      const own = await buildTopic(config, { ...infra.topic, connectionName: infra.topic.connectionName && `${infra.topic.connectionName}-${listener.port}` });
      listener.bind(own.app);
      let closing: Promise<void> | undefined;
      const close = () =>
        (closing ??= (async () => {
          await listener.close();
          await closeInOrder(own.close, infra.topic.logger);
        })());
      extraTopics.push(close);
      return { url: listener.url, close };
    },
    sftpPort: () => built.releases?.sftpPort?.(),
    close: async () => {
      await Promise.all(extraTopics.map((close) => close()));
      await closeAll();
    },
  };
}
