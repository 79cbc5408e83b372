import { randomBytes } from 'node:crypto';
import type { RequestListener } from 'node:http';
import { expect } from 'vitest';
import type { AxiosInstance, AxiosResponse } from 'axios';
import { createLogger, listenHttps, type RunningServer } from '@keyway/kit';
import { tenantOfTopicResource, topicResource, type Batch, type FeedDelivery } from '@keyway/contracts';
import { ApiError, createHttp, topicClient, UnreachableError, type TopicClient } from '@keyway/clients';
import { createAmqpBroker, createMemoryBroker, deadLetterQueue, streamQueue, subscriptionQueue, type Broker, type TopicRef } from '@keyway/broker';
import { createMemoryStore, createRedisStore, type Store } from '@keyway/store';
import type { AuditDb } from '@keyway/audit';
import { connectTestDatabase } from '@keyway/testkit';
import { keyIdOfSignature, parseSas, SasError, signSas, verifySasSignature, type KeyName } from '@keyway/sas';
import { createEphemeralPki, staticTls, type DevPki } from '@keyway/tls';
import { createApp, type TopicApp, type TopicOptions } from '../app.ts';

/**
 * Test harness: the real app over real HTTPS on 127.0.0.1:0, the real topic client, real SAS keys,
 * a real broker and store (embedded both, or RabbitMQ and Redis). Tenants' namespace keys are what
 * PAC would answer.
 */
const AMQP_URL = process.env.KEYWAY_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const REDIS_URL = process.env.KEYWAY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const BROKERS = ['memory', 'amqp'] as const;
export type BrokerKind = (typeof BROKERS)[number];

/** what SAS resource URIs name; deliberately not the listener's address */
export const PUBLIC_BASE_URL = 'https://topic.keyway.test';

export const hex = (bytes = 4) => randomBytes(bytes).toString('hex');
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let pki: DevPki | undefined;
const testPki = () => (pki ??= createEphemeralPki(['topic', 'entitlement']));

interface Tenant {
  tenant: string;
  primary: string;
  secondary: string;
}

export interface TestTopic extends TopicRef {
  /** a SAS key for this topic; defaults: primary key, valid for an hour */
  sas(right: KeyName, options?: { namespaceKey?: string; expiresInSec?: number }): string;
  batch(overrides?: Partial<Batch>): Batch;
}

export interface Harness {
  url: string;
  /** the CA the harness's certificate chains to, for clients of a test's own */
  caPem: string;
  app: TopicApp;
  broker: Broker;
  store: Store;
  /** the trail the app appends its stream `topic` to (a migrated test database, as the service's role) */
  auditDb: AuditDb;
  client: TopicClient;
  /** a client presenting this service's certificate (mTLS), for the internal routes */
  as(service: 'topic' | 'entitlement'): TopicClient;
  /** raw HTTPS for what the client cannot send (wrong types, gzip, broken bodies); never throws on status */
  http: AxiosInstance;
  logs: Array<Record<string, unknown>>;
  newTenant(): Tenant;
  newTopic(tenant?: Tenant, subscriptions?: string[]): TestTopic;
  /** the namespace keys PAC checks a tenant's SAS keys with; change them to rotate */
  tenantKeys: Map<string, string[]>;
  /** the rotation count PAC reports with each verdict; raise it along with a rotation */
  generations: Map<string, number>;
  /** tenants whose signature checks fail as if PAC were unreachable */
  unreachable: Set<string>;
  /** records, as PAC does at a mint with a DPoP proof, that the SAS key is bound to the DPoP key `jkt` */
  bind(sasKey: string, jkt: string): void;
  close(): Promise<void>;
}

async function openBroker(kind: BrokerKind, maxDeliveries: number, maxQueueLength: number): Promise<Broker> {
  return kind === 'memory' ? createMemoryBroker({ maxDeliveries, maxQueueLength }) : createAmqpBroker({ url: AMQP_URL, queueType: 'quorum', maxDeliveries, maxQueueLength });
}

/**
 * The operator's inventory as the entitlement service answers it, by `tenant/topic`: what
 * newTopic(…, subscriptions) lists. One for every harness of the test file, so peer instances agree.
 */
const inventory = new Map<string, Set<string>>();
const listed = (topic: TopicRef) => inventory.get(`${topic.tenant}/${topic.topic}`) ?? new Set<string>();
/** lists (or with `false`, drops) a subscription in the inventory */
function listSubscription(topic: TopicRef, subscription: string, present = true): void {
  const names = listed(topic);
  if (present) names.add(subscription);
  else names.delete(subscription);
  inventory.set(`${topic.tenant}/${topic.topic}`, names);
}

/** the delivery policy of each feed's tier, as the entitlement service answers it with the names, by `tenant/topic` */
const deliveries = new Map<string, FeedDelivery>();
/** sets what the tenant's tier says about the feed (issue 16); the service's defaults fill what it leaves out */
export function setFeedDelivery(topic: TopicRef, delivery: FeedDelivery): void {
  deliveries.set(`${topic.tenant}/${topic.topic}`, delivery);
}
/** feeds (`tenant/topic`) whose inventory lookups fail as if the entitlement service were unreachable */
export const inventoryUnreachable = new Set<string>();

/**
 * @types/amqplib belongs to @keyway/broker, not this service, so the test's own admin connection
 * (to delete the queues it made) is typed here by what it uses.
 */
interface AmqpAdmin {
  connect(url: string): Promise<{ createChannel(): Promise<{ deleteQueue(queue: string): Promise<unknown>; on(event: 'error', fn: () => void): void }>; close(): Promise<void> }>;
}
async function deleteQueues(queues: string[]): Promise<void> {
  if (queues.length === 0) return;
  const specifier = 'amqplib';
  const amqp = ((await import(specifier)) as { default: AmqpAdmin }).default;
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    for (const queue of queues) await ch.deleteQueue(queue);
  } finally {
    await conn.close();
  }
}

/** a fresh key prefix, so parallel test files never share counters */
const newStorePrefix = () => `keyway-test:topic-${hex(6)}:`;

export interface Given {
  /** instead of the harness's own: one behind a proxy the test cuts, or another harness's */
  store?: Store;
  /** instead of the harness's own, e.g. another harness's, so the two apps act as two instances */
  broker?: Broker;
  /** of the harness's own broker; default 10 */
  maxDeliveries?: number;
  /** instead of a test database of the harness's own, e.g. another harness's */
  auditDb?: AuditDb;
}

/** What is given is closed by whoever made it; the harness closes only its own. */
export async function startTopic(kind: BrokerKind, overrides: Partial<TopicOptions> = {}, given: Given = {}): Promise<Harness> {
  const { ca, certs } = testPki();
  const cert = certs.topic;
  if (!cert) throw new Error('no topic certificate');
  const broker = given.broker ?? (await openBroker(kind, given.maxDeliveries ?? 10, overrides.MAX_QUEUE_DEPTH ?? 100_000));
  const store = given.store ?? (kind === 'memory' ? createMemoryStore({ prefix: newStorePrefix() }) : await createRedisStore({ url: REDIS_URL, prefix: newStorePrefix() }));
  const database = given.auditDb ? undefined : await connectTestDatabase();
  const auditDb = given.auditDb ?? database!.as('topic');
  const tenantKeys = new Map<string, string[]>();
  /** rotations per tenant, as PAC counts them (set by tests that rotate) */
  const generations = new Map<string, number>();
  const unreachable = new Set<string>();
  /** key id → the thumbprint of the DPoP key it is bound to */
  const bound = new Map<string, string>();
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({ service: 'topic', level: 'debug', write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });

  // Listening first, so the instance lists the URL it is reached at: harnesses sharing a store and a
  // broker pass settles on to each other as instances of one deploy do.
  let serve: RequestListener = (_req, res) => void res.writeHead(503).end();
  const server: RunningServer = await listenHttps((req, res) => serve(req, res), staticTls({ certPem: cert.certPem, keyPem: cert.keyPem, caPem: ca.certPem }), 0);
  const app = createApp(
    {
      PUBLIC_BASE_URL,
      INSTANCE_URL: server.url,
      LOCK_DURATION_SEC: 60,
      MAX_BATCH_BYTES: 1_048_576,
      SAS_KEY_CACHE_SEC: 30,
      REVOCATION_CACHE_SEC: 2,
      PUBLISH_RATE_PER_SEC: 200,
      PUBLISH_BURST: 400,
      MAX_QUEUE_DEPTH: 100_000,
      STREAM_HEARTBEAT_SEC: 15,
      // the harness's inventory is a Map: ask it every time, so a test's change shows at once
      SUBSCRIPTION_CACHE_SEC: 0,
      // the broker's, so the dead-letter count agrees with what the broker does
      MAX_DELIVERIES: given.maxDeliveries ?? 10,
      QUEUE_DEPTH_POLL_SEC: 0,
      REPLAY_RETENTION_SEC: 604_800,
      REPLAY_MAX_BYTES: 1_073_741_824,
      MESSAGE_TTL_SEC: 604_800,
      DUPLICATE_WINDOW_SEC: 600,
      ...overrides,
    },
    {
      broker,
      store,
      auditDb,
      logger,
      // the contract of the real dependency (PAC's verify endpoint): checked against the keys of the
      // tenant the key's resource names; undefined for a bad key or an unknown tenant, rejects when unreachable
      sasSignatures: async (sasKey) => {
        try {
          const tenant = tenantOfTopicResource(PUBLIC_BASE_URL, parseSas(sasKey).resource);
          if (tenant !== undefined && unreachable.has(tenant)) throw new UnreachableError('pac', 'ECONNREFUSED');
          const keys = tenant === undefined ? undefined : tenantKeys.get(tenant);
          return keys && { ...verifySasSignature(sasKey, keys), generation: generations.get(tenant!) ?? 0 };
        } catch (err) {
          if (err instanceof SasError) return undefined;
          throw err;
        }
      },
      sasKeyStatus: async (keyId) => ({ revoked: false, jkt: bound.get(keyId) }),
      subscriptionNames: async (tenant, topic) => {
        if (inventoryUnreachable.has(`${tenant}/${topic}`)) throw new UnreachableError('entitlement', 'ECONNREFUSED');
        return { subscriptions: [...listed({ tenant, topic })], delivery: deliveries.get(`${tenant}/${topic}`) };
      },
      peer: (baseUrl) => topicClient({ baseUrl, caPem: ca.certPem, clientCert: cert, timeoutMs: 5000 }),
    },
  );
  serve = app;
  const queues: string[] = [];

  const newTenant = (): Tenant => {
    const tenant = { tenant: `t-${hex()}`, primary: hex(32), secondary: hex(32) };
    tenantKeys.set(tenant.tenant, [tenant.primary, tenant.secondary]);
    return tenant;
  };

  return {
    url: server.url,
    caPem: ca.certPem,
    app,
    broker,
    store,
    auditDb,
    client: topicClient({ baseUrl: server.url, caPem: ca.certPem, timeoutMs: 20_000 }),
    as: (service) => topicClient({ baseUrl: server.url, caPem: ca.certPem, clientCert: certs[service], timeoutMs: 20_000 }),
    http: createHttp({ baseUrl: server.url, caPem: ca.certPem, timeoutMs: 20_000 }),
    logs,
    tenantKeys,
    generations,
    unreachable,
    bind: (sasKey, jkt) => void bound.set(keyIdOfSignature(parseSas(sasKey).signature), jkt),
    newTenant,
    newTopic(owner = newTenant(), subscriptions = ['default']) {
      const ref = { tenant: owner.tenant, topic: `tp-${hex()}` };
      queues.push(streamQueue(ref));
      for (const sub of subscriptions) {
        listSubscription(ref, sub);
        const queue = subscriptionQueue(ref, sub);
        queues.push(queue, deadLetterQueue(queue));
      }
      let seq = 0;
      return {
        ...ref,
        sas: (right, options = {}) =>
          signSas(options.namespaceKey ?? owner.primary, right, topicResource(PUBLIC_BASE_URL, ref.tenant, ref.topic), Math.floor(Date.now() / 1000) + (options.expiresInSec ?? 3600)).sasKey,
        batch: (overrides = {}) => ({
          id: `b-${hex(8)}`,
          tenant: ref.tenant,
          topic: ref.topic,
          seq: seq++,
          createdAt: new Date().toISOString(),
          contentType: 'application/json',
          records: [{ host: 'web-1', event: 'login', ok: true, n: 1 }],
          ...overrides,
        }),
      };
    },
    async close() {
      await server.close();
      await app.close();
      if (!given.broker) await broker.close();
      if (kind === 'amqp') await deleteQueues(queues);
      if (!given.store) {
        const keys = await store.keys('');
        if (keys.length > 0) await store.del(...keys);
        await store.close();
      }
      await database?.close();
      // no request of the whole run may have ended in a 500 (every response is logged with its status)
      expect(logs.some((line) => line.msg === 'request' && typeof line.status === 'number')).toBe(true);
      expect(logs.filter((line) => line.status === 500)).toEqual([]);
    },
  };
}

/** a refusal in the OAuth error shape (design.md, HTTP surface) */
export async function expectRefusal(call: Promise<unknown>, status: number, code: string): Promise<void> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  expect(err).toMatchObject({ status, code });
  expect((err as ApiError).description).not.toBe('');
}

export function expectErrorBody(response: AxiosResponse, status: number, code: string): void {
  expect(response.status).toBe(status);
  expect(response.data).toEqual({ error: code, error_description: expect.any(String) });
  expect((response.data as { error_description: string }).error_description).not.toBe('');
}
