import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { createBroker, type Broker } from '@keyway/broker';
import { entitlementClient, idpClient, pacClient, pasClient, topicClient } from '@keyway/clients';
import { createLogger, silentLogger, type Logger, type TlsMaterial } from '@keyway/kit';
import { createStore, type Store } from '@keyway/store';
import { remoteKeySet } from '@keyway/tokens';
import type { DevPki } from '@keyway/tls';
import { createApp as createIdp } from '@keyway/idp';
import { createApp as createEntitlement } from '@keyway/entitlement';
import { createApp as createPas, loadKeyRing } from '@keyway/pas';
import { createApp as createPac } from '@keyway/pac';
import { createApp as createTopic, pacSasKeys } from '@keyway/topic';
import { testPki } from './pki.ts';

export const SERVICES = ['idp', 'entitlement', 'pas', 'pac', 'topic'] as const;
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
  topic?: { lockDurationSec?: number; maxBatchBytes?: number; maxDeliveries?: number; queueType?: 'quorum' | 'classic' };
}

export interface Suite {
  urls: Record<ServiceName, string>;
  pki: DevPki;
  /** entitlement admin client holding the operator certificate */
  operator: ReturnType<typeof entitlementClient>;
  pas: ReturnType<typeof pasClient>;
  pac: ReturnType<typeof pacClient>;
  topic: ReturnType<typeof topicClient>;
  broker: Broker;
  stores: Record<ServiceName, Store>;
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

/** The five services wired together over HTTPS on loopback, the way the dev launcher runs them. */
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
  for (const name of SERVICES) stores[name] = await createStore({ redisUrl: options.redisUrl, prefix: `${prefix}${name}:` });
  const broker = await createBroker({ amqpUrl: options.amqpUrl, queueType: options.topic?.queueType, maxDeliveries: options.topic?.maxDeliveries });

  const asCaller = (name: string) => ({ caPem, clientCert: tlsOf(name) });
  const lifetimes = options.lifetimes ?? {};

  listeners.idp.bind(createIdp({ store: stores.idp, logger: logger('idp') }));
  listeners.entitlement.bind(
    createEntitlement({ store: stores.entitlement, idp: idpClient({ ...asCaller('entitlement'), baseUrl: urls.idp }), logger: logger('entitlement') }),
  );
  const ring = await loadKeyRing(stores.pas);
  listeners.pas.bind(
    createPas(
      {
        settings: {
          issuer: urls.pas,
          accessAudience: urls.pac,
          refreshAudience: urls.pas,
          accessTtlSec: lifetimes.accessTtlSec ?? 1200,
          refreshTtlSec: lifetimes.refreshTtlSec ?? 1_209_600,
          clockToleranceSec: lifetimes.clockToleranceSec ?? 30,
        },
      },
      {
        store: stores.pas,
        ring,
        idp: idpClient({ ...asCaller('pas'), baseUrl: urls.idp }),
        entitlement: entitlementClient({ ...asCaller('pas'), baseUrl: urls.entitlement }),
        logger: logger('pas'),
      },
    ),
  );
  const pasForPac = pasClient({ ...asCaller('pac'), baseUrl: urls.pas });
  listeners.pac.bind(
    createPac(
      { pasIssuer: urls.pas, topicBaseUrl: urls.topic, sasTtlSec: lifetimes.sasTtlSec ?? 86_400, clockToleranceSec: lifetimes.clockToleranceSec ?? 30 },
      { store: stores.pac, pasKeys: remoteKeySet(() => pasForPac.jwks(), { cooldownMs: 1000 }), logger: logger('pac') },
    ),
  );
  const pacForTopic = pacClient({ ...asCaller('topic'), baseUrl: urls.pac });
  const topic = createTopic(
    {
      PUBLIC_BASE_URL: urls.topic,
      LOCK_DURATION_SEC: options.topic?.lockDurationSec ?? 60,
      MAX_BATCH_BYTES: options.topic?.maxBatchBytes ?? 1_048_576,
      SAS_KEY_CACHE_SEC: 30,
    },
    {
      broker,
      sasKeys: pacSasKeys(pacForTopic),
      logger: logger('topic'),
    },
  );
  listeners.topic.bind(topic);

  return {
    urls,
    pki,
    operator: entitlementClient({ ...asCaller('operator'), baseUrl: urls.entitlement }),
    pas: pasClient({ caPem, baseUrl: urls.pas }),
    pac: pacClient({ caPem, baseUrl: urls.pac }),
    topic: topicClient({ caPem, baseUrl: urls.topic }),
    broker,
    stores,
    async close() {
      await Promise.all(SERVICES.map((n) => listeners[n].close()));
      await topic.close();
      await broker.close();
      for (const store of Object.values(stores)) {
        if (options.redisUrl && !options.prefix) {
          const keys = await store.keys('');
          if (keys.length > 0) await store.del(...keys);
        }
        await store.close();
      }
    },
  };
}

export const consoleLogger = (service: ServiceName) => createLogger({ service, level: 'info' });
