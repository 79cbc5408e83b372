import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { createBroker, type Broker } from '@keyway/broker';
import { auditClient, entitlementClient, idpClient, pacClient, pasClient, topicClient } from '@keyway/clients';
import { createLogger, silentLogger, type Logger, type TlsMaterial } from '@keyway/kit';
import { createMemoryStore, createStore, type Store } from '@keyway/store';
import { remoteKeySet } from '@keyway/tokens';
import type { DevPki } from '@keyway/tls';
import { createApp as createIdp, operatorProofChecker, type IdpOptions } from '@keyway/idp';
import { createApp as createEntitlement } from '@keyway/entitlement';
import { createApp as createPas, DEFAULT_KEY_RING_RELOAD_SEC, sharedKeyRing, type PasOptions } from '@keyway/pas';
import { createApp as createPac } from '@keyway/pac';
import { createApp as createTopic, entitlementSubscriptions, pacSasSignatures } from '@keyway/topic';
import { buildAudit, DEFAULT_AUDIT_EXPORT_INTERVAL_MS } from '@keyway/audit-service';
import { testPki } from './pki.ts';
import { deleteQueues } from './rabbit-cleanup.ts';
import { CHANGE_EVENTS_TOPIC, VENDOR_TENANT } from '@keyway/contracts';

export const SERVICES = ['idp', 'entitlement', 'pas', 'pac', 'topic', 'audit'] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface SuiteOptions {
  /** unset = embedded in-memory stores */
  redisUrl?: string;
  /** unset = embedded in-memory broker */
  amqpUrl?: string;
  /** root of every store prefix; tests get a unique one and their keys are deleted on close */
  prefix?: string;
  host?: string;
  ports?: Partial<Record<ServiceName, number>>;
  pki?: DevPki;
  logger?: (service: ServiceName) => Logger;
  lifetimes?: { accessTtlSec?: number; refreshTtlSec?: number; sasTtlSec?: number; clockToleranceSec?: number };
  /** PAS signing-key ring: reload period and the lead a new key is published before it signs */
  signingKeys?: { reloadSec?: number; leadSec?: number };
  revocationMode?: 'strict' | 'lenient';
  refreshReuseLeewaySec?: number;
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
    /**
     * The topic service's own RabbitMQ connection (as in production, where it is its own process), shown
     * by `rabbitmqctl list_connections client_properties`; default `keyway-topic-<suite id>`.
     */
    connectionName?: string;
  };
  /** the secret CRM webhook deliveries are signed with (unset: CRM sync off) */
  crmWebhookSecret?: string;
  /** where the audit keyspace's Redis is reached by the services (default redisUrl), e.g. through a fault proxy */
  auditRedisUrl?: string;
  /** how often the audit service exports audit events to tenants' audit feeds (default 1000 ms) */
  auditExportIntervalMs?: number;
  /** how long the admin APIs reuse PAS's introspection answer for an operator token (default 5 s) */
  operatorTokenCacheSec?: number;
  /** login throttling, refusal limits and their windows (defaults as in production) */
  limits?: {
    pas?: Pick<PasOptions, 'loginLimits' | 'refusalWindowSec'>;
    pac?: { refusalsPerSource?: number; refusalWindowSec?: number };
    idp?: IdpOptions['verification'];
  };
}

export interface Suite {
  urls: Record<ServiceName, string>;
  pki: DevPki;
  /** entitlement admin client holding the operator certificate */
  operator: ReturnType<typeof entitlementClient>;
  /** audit query client holding the operator certificate */
  auditor: ReturnType<typeof auditClient>;
  pas: ReturnType<typeof pasClient>;
  pac: ReturnType<typeof pacClient>;
  topic: ReturnType<typeof topicClient>;
  broker: Broker;
  stores: Record<ServiceName, Store>;
  /**
   * The audit keyspace PAS, PAC, the IdP and the entitlement service append to and the audit service reads (prefix `<suite prefix>audit:`),
   * as the test reads it: directly on redisUrl even when the services reach it through auditRedisUrl.
   */
  audit: Store;
  /** the Express apps (as request listeners), to compare the routes they serve with their OpenAPI documents */
  apps: Record<ServiceName, RequestListener>;
  /** the connection_name of the topic service's RabbitMQ connection (unset with the embedded broker) */
  topicConnectionName: string | undefined;
  /**
   * Restarts the topic service as a deploy would: stops its listener (open connections are cut) and
   * its app (locked batches go back to their queues), closes its RabbitMQ connection, stays down for
   * `downMs` (default 1000), then starts a new app with a new broker connection on the same port.
   * With the embedded broker the broker instance is kept (it has no connection to lose).
   */
  restartTopic(options?: { downMs?: number }): Promise<void>;
  close(): Promise<void>;
}

/** Listens first (port 0 picks one) so every URL is known before the apps that name each other are built. */
async function listenLate(tls: TlsMaterial, host: string, port: number) {
  let handler: RequestListener = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server: Server = createServer(
    { cert: tls.certPem, key: tls.keyPem, ca: tls.caPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    (req: IncomingMessage, res: ServerResponse) => handler(req, res),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
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

/** The six services wired together over HTTPS on loopback, the way the dev launcher runs them. */
export async function startSuite(options: SuiteOptions = {}): Promise<Suite> {
  const pki = options.pki ?? (await testPki());
  const host = options.host ?? '127.0.0.1';
  const prefix = options.prefix ?? `keyway-test:${randomUUID()}:`;
  const logger = options.logger ?? (() => silentLogger);
  const tlsOf = (name: string): TlsMaterial => {
    const cert = pki.certs[name];
    if (!cert) throw new Error(`no certificate for ${name}`);
    return { ...cert, caPem: pki.ca.certPem };
  };
  const caPem = pki.ca.certPem;

  const listeners = {} as Record<ServiceName, Awaited<ReturnType<typeof listenLate>>>;
  for (const name of SERVICES) listeners[name] = await listenLate(tlsOf(name), host, options.ports?.[name] ?? 0);
  const urls = Object.fromEntries(SERVICES.map((n) => [n, listeners[n].url])) as Record<ServiceName, string>;

  const stores = {} as Record<ServiceName, Store>;
  // the audit service's own store is not the audit keyspace (`audit:`), as in its build.ts
  for (const name of SERVICES) stores[name] = await createStore({ redisUrl: options.redisUrl, prefix: `${prefix}${name === 'audit' ? 'audit-service' : name}:` });
  // One audit keyspace, as in production: each service has its own connection to it on Redis; the
  // embedded store is one keyspace per instance, so there the services share one.
  const auditPrefix = `${prefix}audit:`;
  const auditUrl = options.auditRedisUrl ?? options.redisUrl;
  const sharedAudit = auditUrl ? undefined : createMemoryStore({ prefix: auditPrefix });
  const auditStore = async () => sharedAudit ?? createStore({ redisUrl: auditUrl, prefix: auditPrefix });
  const auditStores = { entitlement: await auditStore(), pas: await auditStore(), pac: await auditStore(), idp: await auditStore(), audit: await auditStore() };
  const audit = options.redisUrl ? await createStore({ redisUrl: options.redisUrl, prefix: auditPrefix }) : auditStores.entitlement;
  const brokerOptions = { amqpUrl: options.amqpUrl, queueType: options.topic?.queueType, maxDeliveries: options.topic?.maxDeliveries };
  // the topic service's own queues are bounded, as its main.ts does (with the embedded broker, shared, all are)
  const topicBrokerOptions = { ...brokerOptions, maxQueueLength: options.topic?.maxQueueDepth ?? 100_000 };
  const broker = await createBroker(options.amqpUrl ? brokerOptions : topicBrokerOptions);
  // Suites share one RabbitMQ: each gets its own change-event topic so no suite consumes another's events.
  const suiteId = randomUUID().slice(0, 8);
  // On RabbitMQ the topic service has a connection of its own, so it can be restarted or dropped alone.
  const topicConnectionName = options.amqpUrl ? (options.topic?.connectionName ?? `keyway-topic-${suiteId}`) : undefined;
  const createTopicBroker = () => (options.amqpUrl ? createBroker({ ...topicBrokerOptions, connectionName: topicConnectionName }) : Promise.resolve(broker));
  let topicBroker = await createTopicBroker();

  const asCaller = (name: string) => ({ caPem, clientCert: tlsOf(name) });
  const changeEventsTopic = options.prefix ? CHANGE_EVENTS_TOPIC : { tenant: CHANGE_EVENTS_TOPIC.tenant, topic: `changes-${suiteId}` };
  const provisioned = new Set<string>();
  const lifetimes = options.lifetimes ?? {};

  const operatorTokenCacheMs = options.operatorTokenCacheSec === undefined ? undefined : options.operatorTokenCacheSec * 1000;
  const pasForEntitlement = pasClient({ ...asCaller('entitlement'), baseUrl: urls.pas });
  const pasJwks = pasClient({ caPem, baseUrl: urls.pas });
  const idp = createIdp({
    store: stores.idp,
    auditStore: auditStores.idp,
    operatorProof: operatorProofChecker({
      pasIssuer: urls.pas,
      entitlementUrl: urls.entitlement,
      clockToleranceSec: lifetimes.clockToleranceSec ?? 30,
      keys: remoteKeySet(() => pasJwks.jwks(), { cooldownMs: 1000, maxAgeMs: 2000 }),
    }),
    logger: logger('idp'),
  }, { verification: options.limits?.idp });
  listeners.idp.bind(idp);
  const entitlement = createEntitlement(
    {
      publicUrl: urls.entitlement,
      pasIssuer: urls.pas,
      clockToleranceSec: lifetimes.clockToleranceSec ?? 30,
      crmWebhookSecret: options.crmWebhookSecret,
      operatorTokenCacheMs,
    },
    {
      store: stores.entitlement,
      auditStore: auditStores.entitlement,
      idp: idpClient({ ...asCaller('entitlement'), baseUrl: urls.idp }),
      broker,
      changeEventsTopic,
      pasKeys: remoteKeySet(() => pasForEntitlement.jwks(), { cooldownMs: 1000, maxAgeMs: 2000 }),
      introspect: (token) => pasForEntitlement.introspect(token, 'access_token'),
      // without a certificate, as its main.ts: each call carries the operator's own token
      console: { pas: pasForEntitlement, pac: pacClient({ baseUrl: urls.pac, caPem }), audit: auditClient({ baseUrl: urls.audit, caPem }) },
      logger: logger('entitlement'),
    },
  );
  listeners.entitlement.bind(entitlement);
  const ring = await sharedKeyRing(stores.pas, { reloadMs: (options.signingKeys?.reloadSec ?? DEFAULT_KEY_RING_RELOAD_SEC) * 1000, logger: logger('pas') });
  const pas = createPas(
      {
        settings: {
          issuer: urls.pas,
          accessAudience: urls.pac,
          adminAudiences: [urls.entitlement, urls.pas, urls.audit],
          refreshAudience: urls.pas,
          accessTtlSec: lifetimes.accessTtlSec ?? 1200,
          refreshTtlSec: lifetimes.refreshTtlSec ?? 1_209_600,
          clockToleranceSec: lifetimes.clockToleranceSec ?? 30,
        },
        revocationMode: options.revocationMode,
        refreshReuseLeewaySec: options.refreshReuseLeewaySec,
        signingKeyLeadSec: options.signingKeys?.leadSec,
        ...options.limits?.pas,
      },
      {
        store: stores.pas,
        auditStore: auditStores.pas,
        ring,
        idp: idpClient({ ...asCaller('pas'), baseUrl: urls.idp }),
        entitlement: entitlementClient({ ...asCaller('pas'), baseUrl: urls.entitlement }),
        broker,
        changeEventsTopic,
        logger: logger('pas'),
      },
    );
  listeners.pas.bind(pas);
  const pasForPac = pasClient({ ...asCaller('pac'), baseUrl: urls.pas });
  const pac = createPac(
    {
      publicUrl: urls.pac,
      pasIssuer: urls.pas,
      topicBaseUrl: urls.topic,
      sasTtlSec: lifetimes.sasTtlSec ?? 86_400,
      clockToleranceSec: lifetimes.clockToleranceSec ?? 30,
      revocationMode: options.revocationMode,
      operatorTokenCacheMs,
      ...options.limits?.pac,
    },
    {
      store: stores.pac,
      auditStore: auditStores.pac,
      // Short cooldown and max age so tests see a rotated key picked up and a retired one dropped within seconds.
      pasKeys: remoteKeySet(() => pasForPac.jwks(), { cooldownMs: 1000, maxAgeMs: 2000 }),
      introspect: (token, hint) => pasForPac.introspect(token, hint),
      broker,
      changeEventsTopic,
      logger: logger('pac'),
    },
  );
  listeners.pac.bind(pac);
  const pacForTopic = pacClient({ ...asCaller('topic'), baseUrl: urls.pac });
  const buildTopic = (topicBroker: Broker) => createTopic(
    {
      PUBLIC_BASE_URL: urls.topic,
      LOCK_DURATION_SEC: options.topic?.lockDurationSec ?? 60,
      MAX_BATCH_BYTES: options.topic?.maxBatchBytes ?? 1_048_576,
      SAS_KEY_CACHE_SEC: 30,
      REVOCATION_CACHE_SEC: 2,
      PUBLISH_RATE_PER_SEC: options.topic?.publishRatePerSec ?? 200,
      PUBLISH_BURST: options.topic?.publishBurst ?? 400,
      MAX_QUEUE_DEPTH: options.topic?.maxQueueDepth ?? 100_000,
      STREAM_HEARTBEAT_SEC: options.topic?.streamHeartbeatSec ?? 15,
      SUBSCRIPTION_CACHE_SEC: options.topic?.subscriptionCacheSec ?? 1,
    },
    {
      broker: topicBroker,
      store: stores.topic,
      sasSignatures: pacSasSignatures(pacForTopic),
      sasKeyRevoked: async (keyId) => (await pacForTopic.sasKeyStatus(keyId)).revoked,
      subscriptionNames: entitlementSubscriptions(entitlementClient({ ...asCaller('topic'), baseUrl: urls.entitlement })),
      logger: logger('topic'),
    },
  );
  let topic = buildTopic(topicBroker);
  listeners.topic.bind(topic);
  const pasForAudit = pasClient({ ...asCaller('audit'), baseUrl: urls.pas });
  const audited = await buildAudit(
    {
      REDIS_URL: options.redisUrl,
      STORE_PREFIX: prefix.replace(/:$/, ''),
      PUBLIC_URL: urls.audit,
      PAS_URL: urls.pas,
      ENTITLEMENT_URL: urls.entitlement,
      TOPIC_URL: urls.topic,
      OPERATOR_TENANT: VENDOR_TENANT,
      CLOCK_TOLERANCE_SEC: lifetimes.clockToleranceSec ?? 30,
      AUDIT_EXPORT_INTERVAL_MS: options.auditExportIntervalMs ?? DEFAULT_AUDIT_EXPORT_INTERVAL_MS,
    },
    {
      logger: logger('audit'),
      tls: tlsOf('audit'),
      store: stores.audit,
      auditStore: auditStores.audit,
      pasKeys: remoteKeySet(() => pasForAudit.jwks(), { cooldownMs: 1000, maxAgeMs: 2000 }),
      operatorTokenCacheMs,
    },
  );
  listeners.audit.bind(audited.app);
  const apps: Record<ServiceName, RequestListener> = { idp, entitlement, pas, pac, topic, audit: audited.app };

  return {
    urls,
    pki,
    operator: recordTenants(entitlementClient({ ...asCaller('operator'), baseUrl: urls.entitlement }), provisioned),
    auditor: auditClient({ ...asCaller('operator'), baseUrl: urls.audit }),
    pas: pasClient({ caPem, baseUrl: urls.pas }),
    pac: pacClient({ caPem, baseUrl: urls.pac }),
    topic: topicClient({ caPem, baseUrl: urls.topic }),
    broker,
    stores,
    audit,
    apps,
    topicConnectionName,
    async restartTopic({ downMs = 1000 } = {}) {
      const port = Number(new URL(urls.topic).port);
      await listeners.topic.close();
      await topic.close();
      if (topicBroker !== broker) await topicBroker.close();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      topicBroker = await createTopicBroker();
      topic = buildTopic(topicBroker);
      apps.topic = topic;
      listeners.topic = await listenLate(tlsOf('topic'), host, port);
      listeners.topic.bind(topic);
    },
    async close() {
      // first: its exporter publishes through the topic service
      for (const close of audited.close) await close();
      await Promise.all(SERVICES.map((n) => listeners[n].close()));
      await Promise.all([topic.close(), pas.close(), pac.close(), idp.close()]);
      ring.close();
      await entitlement.close();
      if (topicBroker !== broker) await topicBroker.close();
      await broker.close();
      if (options.amqpUrl && !options.prefix) {
        const ours = (name: string) => name.includes(`.${changeEventsTopic.topic}.`) || [...provisioned].some((t) => name.startsWith(`keyway.sub.${t}.`));
        await deleteQueues(options.amqpUrl, (name) => !ours(name));
      }
      for (const store of Object.values(stores)) {
        if (options.redisUrl && !options.prefix) {
          const keys = await store.keys('');
          if (keys.length > 0) await store.del(...keys);
        }
        await store.close();
      }
      if (options.redisUrl && !options.prefix) {
        const keys = await audit.keys('');
        if (keys.length > 0) await audit.del(...keys);
      }
      for (const store of new Set([audit, ...Object.values(auditStores)])) await store.close();
    },
  };
}

export const consoleLogger = (service: ServiceName) => createLogger({ service, level: 'info' });

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
