import type { RequestListener } from 'node:http';
import { randomUUID } from 'node:crypto';
import { createBroker, type Broker, type TopicRef } from '@keyway/broker';
import { auditClient, entitlementClient, pacClient, pasClient, releasesClient, topicClient } from '@keyway/clients';
import { CHANGE_EVENTS_TOPIC } from '@keyway/contracts';
import { compose, RELEASES_CLIENT, SERVICES, type ServiceName } from '@keyway/dev';
import { silentLogger, type Logger } from '@keyway/kit';
import { Keyring } from '@keyway/seal';
import { openPostgres, type Db } from '@keyway/db';
import { createStore, type Store } from '@keyway/store';
import type { DevPki } from '@keyway/tls';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { testPkiDir } from './pki.ts';
import { deleteQueues } from './rabbit-cleanup.ts';

export { RELEASES_CLIENT, SERVICES, type ServiceName };

export interface SuiteOptions {
  /** unset = embedded in-memory stores */
  redisUrl?: string;
  /**
   * The system of record. Default: a fresh database of the suite's own on the machine's PostgreSQL
   * (dropped on close) when redisUrl is set, the embedded PGlite otherwise; 'embedded' forces PGlite;
   * a TestDatabase is used as it is (and left to its owner to drop).
   */
  database?: 'embedded' | TestDatabase;
  /** AMQP_URL of every service: one node, or a cluster's nodes separated by commas; unset = embedded in-memory broker */
  amqpUrl?: string;
  logger?: (service: ServiceName) => Logger;
  /** the PKI folder the services read their certificates from (default: the run's shared one); a test that renews certificates uses its own */
  pkiDir?: string;
  /** TLS_RELOAD_SEC of every service (their default: 30) */
  tlsReloadSec?: number;
  lifetimes?: { accessTtlSec?: number; refreshTtlSec?: number; sasTtlSec?: number; clockToleranceSec?: number };
  /** PAS signing-key ring: reload period and the lead a new key is published before it signs */
  signingKeys?: { reloadSec?: number; leadSec?: number };
  /** the keyring PAS and PAC seal their keys under (KEYWAY_KEK_FILE); unset = the development one in the test PKI directory, shared by every suite */
  kekFile?: string;
  revocationMode?: 'strict' | 'lenient';
  refreshReuseLeewaySec?: number;
  /** how long PAS's authorization codes may be redeemed (default 60 s) */
  authorizationCodeTtlSec?: number;
  /** PAS's BROWSER_CLIENTS instead of the dev suite's (RELEASES_CLIENT at its fixed port), e.g. a test site on a port of its own */
  browserClients?: Array<{ client_id: string; client_name?: string; redirect_uris: string[]; scope: string }>;
  topic?: {
    lockDurationSec?: number;
    maxBatchBytes?: number;
    maxDeliveries?: number;
    queueType?: 'quorum' | 'classic';
    /** per-tenant publish quota (defaults as in production: 200/s, burst 400) */
    publishRatePerSec?: number;
    publishBurst?: number;
    /** ready messages a subscription may hold; beyond it the oldest are dead-lettered (default 100 000) */
    maxQueueDepth?: number;
    /** how long the topic service reuses a feed's list of subscriptions (default 1 s; production 5 s) */
    subscriptionCacheSec?: number;
    streamHeartbeatSec?: number;
    /** BROKER_PREFETCH: unacked messages the topic service takes ahead per subscription (default 50 here; production 500) */
    brokerPrefetch?: number;
    /** DUPLICATE_WINDOW_SEC: how long a published batch id is remembered (default 600; 0 = off) */
    duplicateWindowSec?: number;
    /**
     * The topic service's own RabbitMQ connection (as in production, where it is its own process), shown
     * by `rabbitmqctl list_connections client_properties`; default `keyway-topic-<suite id>`.
     */
    connectionName?: string;
  };
  /** the secret CRM webhook deliveries are signed with (unset: CRM sync off) */
  crmWebhookSecret?: string;
  /** the releases service's scanner (default: Debian's clamd socket; with none there, uploads wait as scan_pending) */
  releases?: {
    clamdAddress?: string;
    clamdStreamMaxLength?: string;
    scanRetrySec?: number;
    /** SFTP_TRUSTED_USER_CA_FILE */
    trustedUserCaFile?: string;
    /** SFTP_REAUTHORIZE_SEC */
    sftpReauthorizeSec?: number;
  };
  /** the URL a service's audit trail reaches the suite's database at, from its own (default: the same), e.g. through a fault proxy */
  auditDatabaseUrl?: (serviceUrl: string) => string;
  /** where PAS, PAC or the topic service alone reaches RabbitMQ and Redis (default amqpUrl, redisUrl), e.g. through a fault proxy that cuts that one service's link */
  links?: Partial<Record<'pas' | 'pac' | 'topic', { amqpUrl?: string; redisUrl?: string }>>;
  /** how often the audit service exports audit events to tenants' audit feeds (default 1000 ms) */
  auditExportIntervalMs?: number;
  /** PAS's DPOP_REQUIRED_FOR: the login grants that must present a DPoP proof (default none) */
  dpopRequiredFor?: string[];
  /** how long the admin APIs reuse PAS's introspection answer for an operator token (default 5 s) */
  operatorTokenCacheSec?: number;
  /** STEP_UP_MAX_AGE_SEC of the entitlement service, PAS and PAC: how recent an operator's login with a second factor must be for a destructive action (default 300) */
  stepUpMaxAgeSec?: number;
  /** login throttling, refusal limits and their windows (defaults as in production) */
  limits?: {
    pas?: {
      loginLimits?: {
        windowSec?: number;
        failuresPerAccountSource?: number;
        failuresPerAccount?: number;
        failuresPerSource?: number;
        concurrentPerSource?: number;
        refusalsPerSource?: number;
      };
      refusalWindowSec?: number;
    };
    pac?: { refusalsPerSource?: number; refusalWindowSec?: number };
    idp?: { hashConcurrency?: number; hashQueue?: number; hashMaxWaitMs?: number; failuresPerAccount?: number; windowSec?: number };
  };
}

export interface Suite {
  urls: Record<ServiceName, string>;
  pki: DevPki;
  /** the keyring PAS's signing keys and PAC's SAS root keys are sealed under (to read what the services stored) */
  kek: Keyring;
  /** entitlement admin client holding the operator certificate */
  operator: ReturnType<typeof entitlementClient>;
  /** audit query client holding the operator certificate */
  auditor: ReturnType<typeof auditClient>;
  /** the releases service's JSON API (a person's access token per call; the operator certificate for the report) */
  releases: ReturnType<typeof releasesClient>;
  /** PAC admin client (SAS key rotation, policy keys) holding the operator certificate */
  pacOperator: ReturnType<typeof pacClient>;
  pas: ReturnType<typeof pasClient>;
  pac: ReturnType<typeof pacClient>;
  topic: ReturnType<typeof topicClient>;
  /** the broker as the tests see it: the services' shared embedded one, or a connection of the suite's own to RabbitMQ */
  broker: Broker;
  /** each service's own keyspace (hot state), as the service holds it */
  stores: Record<ServiceName, Store>;
  /** the durable records (system of record) of the IdP, the entitlement service, PAS and PAC, as each holds them */
  records: Record<'idp' | 'entitlement' | 'pas' | 'pac', Store>;
  /** the suite's PostgreSQL database (unset when the services run on the embedded PGlite) */
  database: TestDatabase | undefined;
  /**
   * The audit trail (keyway_audit.events, checkpoints) as the database's admin sees it, who may
   * rewrite anything: the suite's database directly, or the embedded PGlite.
   */
  audit: Db;
  /** the Express apps (as request listeners), to compare the routes they serve with their OpenAPI documents */
  apps: Record<ServiceName, RequestListener>;
  /** the connection_name of the topic service's RabbitMQ connection (unset with the embedded broker) */
  topicConnectionName: string | undefined;
  /** this suite's change-event topic, which PAS and PAC each follow as subscription `pas` and `pac` */
  changeEventsTopic: TopicRef;
  /**
   * Restarts the topic service as a deploy would: stops its listener (open connections are cut) and
   * its app (locked batches go back to their queues), closes its RabbitMQ connection, stays down for
   * `downMs` (default 1000), then starts a new app with a new broker connection on the same port.
   * With the embedded broker the broker instance is kept (it has no connection to lose).
   */
  restartTopic(options?: { downMs?: number }): Promise<void>;
  /** the releases service's SFTP port (on 127.0.0.1) */
  releasesSftpPort(): number;
  /**
   * One more topic-service instance sharing the suite's store and broker (its own RabbitMQ
   * connection), as a scaled-out deploy runs it, with a client of its own; closed with the suite at
   * the latest.
   */
  addTopicInstance(): Promise<{ url: string; topic: ReturnType<typeof topicClient>; close(): Promise<void> }>;
  close(): Promise<void>;
}

/** Environment records without the unset keys, as a process environment would hold them. */
const env = (record: Record<string, string | number | undefined>): Record<string, string> =>
  Object.fromEntries(Object.entries(record).flatMap(([key, value]) => (value === undefined ? [] : [[key, String(value)]])));

/**
 * The seven services wired together over HTTPS on loopback by the dev launcher's composition
 * (@keyway/dev), each with a unique store prefix and change-event topic whose keys and queues are
 * deleted on close. SuiteOptions become the services' own configuration keys.
 */
export async function startSuite(options: SuiteOptions = {}): Promise<Suite> {
  const suiteId = randomUUID().slice(0, 8);
  const storePrefix = `keyway-test:${randomUUID()}`;
  const lifetimes = options.lifetimes ?? {};
  const limits = options.limits ?? {};
  const login = limits.pas?.loginLimits ?? {};
  // Suites share one RabbitMQ: each gets its own change-event topic so no suite consumes another's events.
  const changeEventsTopic = { tenant: CHANGE_EVENTS_TOPIC.tenant, topic: `changes-${suiteId}` };
  // On RabbitMQ the topic service has a connection of its own, so it can be restarted or dropped alone.
  const topicConnectionName = options.amqpUrl ? (options.topic?.connectionName ?? `keyway-topic-${suiteId}`) : undefined;
  const { auditDatabaseUrl } = options;

  const ownDatabase = options.database === undefined && options.redisUrl ? await createTestDatabase() : undefined;
  const database = options.database === 'embedded' ? undefined : (options.database ?? ownDatabase);

  const composing = compose({
    pkiDir: options.pkiDir ?? testPkiDir(),
    database: database ? { serviceUrl: (service) => database.serviceUrl(service) } : {},
    logger: options.logger ?? (() => silentLogger),
    changeEventsTopic,
    connectionNames: { topic: topicConnectionName },
    auditDatabase: database && auditDatabaseUrl ? async (service) => openPostgres({ url: auditDatabaseUrl(database.serviceUrl(service)) }) : undefined,
    env: env({
      REDIS_URL: options.redisUrl,
      AMQP_URL: options.amqpUrl,
      STORE_PREFIX: storePrefix,
      TLS_RELOAD_SEC: options.tlsReloadSec,
      KEYWAY_KEK_FILE: options.kekFile,
      CLOCK_TOLERANCE_SEC: lifetimes.clockToleranceSec,
      REVOCATION_MODE: options.revocationMode,
      // short, so tests see a rotated key picked up and a retired one dropped within seconds
      PAS_JWKS_COOLDOWN_SEC: 1,
      PAS_JWKS_MAX_AGE_SEC: 2,
      OPERATOR_TOKEN_CACHE_SEC: options.operatorTokenCacheSec,
    }),
    serviceEnv: {
      idp: env({
        SCRYPT_CONCURRENCY: limits.idp?.hashConcurrency,
        SCRYPT_QUEUE: limits.idp?.hashQueue,
        SCRYPT_MAX_WAIT_MS: limits.idp?.hashMaxWaitMs,
        VERIFY_FAILURES_PER_ACCOUNT: limits.idp?.failuresPerAccount,
        VERIFY_WINDOW_SEC: limits.idp?.windowSec,
      }),
      entitlement: env({ CRM_WEBHOOK_SECRET: options.crmWebhookSecret, STEP_UP_MAX_AGE_SEC: options.stepUpMaxAgeSec }),
      audit: env({ AUDIT_EXPORT_INTERVAL_MS: options.auditExportIntervalMs }),
      releases: env({
        CLAMD_ADDRESS: options.releases?.clamdAddress,
        CLAMD_STREAM_MAX_LENGTH: options.releases?.clamdStreamMaxLength,
        RELEASES_SCAN_RETRY_SEC: options.releases?.scanRetrySec,
        SFTP_TRUSTED_USER_CA_FILE: options.releases?.trustedUserCaFile,
        SFTP_REAUTHORIZE_SEC: options.releases?.sftpReauthorizeSec,
      }),
      pas: env({
        AMQP_URL: options.links?.pas?.amqpUrl,
        REDIS_URL: options.links?.pas?.redisUrl,
        ACCESS_TOKEN_TTL_SEC: lifetimes.accessTtlSec,
        REFRESH_TOKEN_TTL_SEC: lifetimes.refreshTtlSec,
        REFRESH_REUSE_LEEWAY_SEC: options.refreshReuseLeewaySec,
        AUTHORIZATION_CODE_TTL_SEC: options.authorizationCodeTtlSec,
        STEP_UP_MAX_AGE_SEC: options.stepUpMaxAgeSec,
        BROWSER_CLIENTS: options.browserClients && JSON.stringify(options.browserClients),
        KEY_RING_RELOAD_SEC: options.signingKeys?.reloadSec,
        SIGNING_KEY_LEAD_SEC: options.signingKeys?.leadSec,
        LOGIN_WINDOW_SEC: login.windowSec,
        LOGIN_FAILURES_PER_ACCOUNT_SOURCE: login.failuresPerAccountSource,
        LOGIN_FAILURES_PER_ACCOUNT: login.failuresPerAccount,
        LOGIN_FAILURES_PER_SOURCE: login.failuresPerSource,
        LOGIN_CONCURRENT_PER_SOURCE: login.concurrentPerSource,
        REFUSALS_PER_SOURCE: login.refusalsPerSource,
        REFUSAL_WINDOW_SEC: limits.pas?.refusalWindowSec,
        DPOP_REQUIRED_FOR: options.dpopRequiredFor?.join(','),
      }),
      pac: env({
        AMQP_URL: options.links?.pac?.amqpUrl,
        REDIS_URL: options.links?.pac?.redisUrl,
        SAS_TTL_SEC: lifetimes.sasTtlSec,
        STEP_UP_MAX_AGE_SEC: options.stepUpMaxAgeSec,
        REFUSALS_PER_SOURCE: limits.pac?.refusalsPerSource,
        REFUSAL_WINDOW_SEC: limits.pac?.refusalWindowSec,
      }),
      topic: env({
        AMQP_URL: options.links?.topic?.amqpUrl,
        REDIS_URL: options.links?.topic?.redisUrl,
        LOCK_DURATION_SEC: options.topic?.lockDurationSec,
        MAX_BATCH_BYTES: options.topic?.maxBatchBytes,
        MAX_DELIVERIES: options.topic?.maxDeliveries,
        QUEUE_TYPE: options.topic?.queueType,
        PUBLISH_RATE_PER_SEC: options.topic?.publishRatePerSec,
        PUBLISH_BURST: options.topic?.publishBurst,
        MAX_QUEUE_DEPTH: options.topic?.maxQueueDepth,
        SUBSCRIPTION_CACHE_SEC: options.topic?.subscriptionCacheSec ?? 1,
        STREAM_HEARTBEAT_SEC: options.topic?.streamHeartbeatSec,
        // the broker's own default, which the delivery fault tests have always run with (production: 500)
        BROKER_PREFETCH: options.topic?.brokerPrefetch ?? 50,
        DUPLICATE_WINDOW_SEC: options.topic?.duplicateWindowSec,
      }),
    },
  });
  // a suite that fails to start leaves no database behind either
  const composition = await composing.catch(async (err: unknown) => {
    await ownDatabase?.drop();
    throw err;
  });
  const { urls, pki } = composition;
  const caPem = pki.ca.certPem;
  const broker = composition.embedded.broker ?? (await createBroker({ amqpUrl: options.amqpUrl }));
  const audit = database ? openPostgres({ url: database.adminUrl, max: 2 }) : (composition.embedded.database as Db);
  const provisioned = new Set<string>();
  const operator = recordTenants(entitlementClient({ caPem, clientCert: pki.certs.operator, baseUrl: urls.entitlement }), provisioned);

  return {
    urls,
    pki,
    kek: await Keyring.open(composition.kekFile),
    operator,
    auditor: auditClient({ caPem, clientCert: pki.certs.operator, baseUrl: urls.audit }),
    releases: releasesClient({ caPem, clientCert: pki.certs.operator, baseUrl: urls.releases }),
    pacOperator: pacClient({ caPem, clientCert: pki.certs.operator, baseUrl: urls.pac }),
    pas: pasClient({ caPem, baseUrl: urls.pas }),
    pac: pacClient({ caPem, baseUrl: urls.pac }),
    topic: topicClient({ caPem, baseUrl: urls.topic }),
    broker,
    stores: composition.stores,
    records: composition.records as Suite['records'],
    database,
    audit,
    apps: composition.apps,
    topicConnectionName,
    changeEventsTopic,
    restartTopic: (restart) => composition.restart('topic', restart),
    releasesSftpPort: () => {
      const port = composition.sftpPort();
      if (port === undefined) throw new Error('the releases service runs no SFTP server (SFTP_PORT=off)');
      return port;
    },
    async addTopicInstance() {
      const instance = await composition.addTopicInstance();
      return { ...instance, topic: topicClient({ caPem, baseUrl: instance.url }) };
    },
    async close() {
      // tenants made around the operator client (a CRM webhook, the CLI) have queues and streams too
      if (options.amqpUrl) for (const id of await everyTenant(operator).catch(() => [])) provisioned.add(id);
      try {
        if (database) await audit.close();
        await composition.close();
      } finally {
        // a suite that closes badly still leaves no database behind on the machine's PostgreSQL
        await ownDatabase?.drop();
      }
      if (broker !== composition.embedded.broker) await broker.close();
      if (options.amqpUrl) {
        // streams too: each holds two file handles at the broker for as long as it exists, and a run makes hundreds
        const ours = (name: string) => name.includes(`.${changeEventsTopic.topic}.`) || [...provisioned].some((t) => name.startsWith(`keyway.sub.${t}.`) || name.startsWith(`keyway.stream.${t}.`));
        await deleteQueues(options.amqpUrl, (name) => !ours(name));
      }
      if (options.redisUrl) {
        // every service's keys, through one connection of the suite's own
        const keys = await createStore({ redisUrl: options.redisUrl, prefix: `${storePrefix}:` });
        const names = await keys.keys('');
        if (names.length > 0) await keys.del(...names);
        await keys.close();
      }
    },
  };
}

/** The ids of every tenant the suite's entitlement service holds, page by page. */
async function everyTenant(operator: ReturnType<typeof entitlementClient>): Promise<string[]> {
  const ids: string[] = [];
  for (let cursor: string | undefined; ; ) {
    const page = await operator.listTenants({ limit: 500, cursor });
    ids.push(...page.tenants.map((tenant) => tenant.id));
    if (page.next_cursor === undefined) return ids;
    cursor = page.next_cursor;
  }
}

/** Remembers the tenants a suite creates, so their queues can be deleted when it closes. */
function recordTenants(client: ReturnType<typeof entitlementClient>, tenants: Set<string>): ReturnType<typeof entitlementClient> {
  return {
    ...client,
    createTenant: async (tenant) => {
      tenants.add(tenant.id);
      return client.createTenant(tenant);
    },
  };
}
