/**
 * README command 1: the whole suite over HTTPS in one process (KEYWAY_ENV=development), a demo
 * tenant, a demo producer and a running importer writing to a file. Uses Redis/RabbitMQ when
 * REDIS_URL/AMQP_URL are set, the embedded store and broker otherwise.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { amqpUrls, redactedUrl } from '@keyway/broker';
import { dpopSigner, entitlementClient, loadOrCreateDpopKey, pacClient, pasClient, topicClient } from '@keyway/clients';
import { migrate, openPostgres, serviceRoleUrl } from '@keyway/db';
import { createAgent, fileCheckpoint, fileSink } from '@keyway/importer';
import { createLogger, loadConfig, onShutdown } from '@keyway/kit';
import { renewDevPki } from '@keyway/tls';
import { LaunchEnv } from './config.ts';
import { VENDOR_TENANT } from '@keyway/contracts';
import { compose, PKI_NAMES, SERVICES, type ServiceName } from './src/index.ts';
import { DEMO_FEED, DEMO_PRODUCT, DEMO_TENANT, demoCredentials, enrolDemoOperator, seedDemo } from './demo-seed.ts';
import { startDemoProducer } from './producer.ts';

const config = loadConfig(LaunchEnv);
const home = resolve(config.KEYWAY_HOME);
const logsDir = join(home, 'logs');
mkdirSync(logsDir, { recursive: true, mode: 0o700 });
const fileLogger = (name: string) => {
  const stream = createWriteStream(join(logsDir, `${name}.log`), { flags: 'a' });
  return createLogger({ service: name, level: config.LOG_LEVEL, write: (line) => stream.write(`${line}\n`) });
};
const say = (line = '') => process.stdout.write(`${line}\n`);

/** A real PostgreSQL is migrated here, as `keyway db migrate` would, before the services connect as their own roles. */
async function migrated(url: string): Promise<string> {
  const db = openPostgres({ url, max: 1 });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
  return url;
}
const databaseUrl = config.DATABASE_URL ? await migrated(config.DATABASE_URL) : undefined;

const ports = Object.fromEntries(SERVICES.map((name, i) => [name, config.KEYWAY_PORT_BASE + i])) as Record<ServiceName, number>;
const pkiDir = join(home, 'pki');
const suite = await compose({
  pkiDir,
  certHours: config.KEYWAY_CERT_HOURS,
  ports,
  logger: fileLogger,
  database: databaseUrl ? { serviceUrl: (service) => serviceRoleUrl(databaseUrl, service) } : {},
  // each service's own defaults, as its main.ts would run with only these set
  env: { REDIS_URL: config.REDIS_URL, AMQP_URL: config.AMQP_URL, TRUST_DOMAIN: config.TRUST_DOMAIN, TLS_RELOAD_SEC: String(config.TLS_RELOAD_SEC) },
});
// Short-lived certificates, renewed at half life in place; the services re-read them (TLS_RELOAD_SEC)
const pkiLog = fileLogger('pki');
const stopRenewing = renewDevPki(pkiDir, [...PKI_NAMES], {
  trustDomain: config.TRUST_DOMAIN,
  leafHours: config.KEYWAY_CERT_HOURS,
  onError: (err) => pkiLog.error('pki.renew_failed', { err }),
});
const caPem = suite.pki.ca.certPem;
const clients = {
  pas: pasClient({ caPem, baseUrl: suite.urls.pas }),
  pac: pacClient({ caPem, baseUrl: suite.urls.pac }),
  topic: topicClient({ caPem, baseUrl: suite.urls.topic }),
};

const credentialsFile = join(home, 'demo-credentials.json');
const credentials = demoCredentials(credentialsFile);
await seedDemo(entitlementClient({ caPem, clientCert: suite.pki.certs.operator, baseUrl: suite.urls.entitlement }), credentials);
await enrolDemoOperator(clients.pas, credentials, credentialsFile);

const sinkPath = join(home, 'out', `${DEMO_TENANT}-${DEMO_FEED}.jsonl`);
// The demo importer runs as a real one does: its tokens and SAS keys bound to its own DPoP key (README "DPoP for agents").
const importerKeyFile = join(home, 'importer', 'dpop-key.pem');
const dpop = dpopSigner(await loadOrCreateDpopKey(importerKeyFile));
const importer = createAgent(
  {
    credentials: { kind: 'password', username: credentials.importer.email, password: credentials.importer.password },
    subscription: 'default',
    receiveTimeoutSec: 20,
  },
  {
    pas: pasClient({ caPem, baseUrl: suite.urls.pas, dpop }),
    pac: pacClient({ caPem, baseUrl: suite.urls.pac, dpop }),
    topic: topicClient({ caPem, baseUrl: suite.urls.topic, dpop }),
    sink: await fileSink(sinkPath),
    checkpoint: await fileCheckpoint(`${sinkPath}.checkpoint`),
    logger: fileLogger('importer'),
  },
);
importer.start();
const producer = startDemoProducer({ ...clients, logger: fileLogger('producer') }, { ...credentials.producer, tenant: DEMO_TENANT, topic: DEMO_FEED, intervalMs: config.DEMO_PUBLISH_INTERVAL_MS });

say('Keyway is running (Ctrl-C to stop).');
say();
for (const name of SERVICES) say(`  ${name.padEnd(12)} ${suite.urls[name]}`);
const sftpPort = suite.sftpPort();
if (sftpPort !== undefined) say(`  ${'sftp'.padEnd(12)} localhost:${sftpPort}, the releases tree (pnpm keyway release login, then pnpm keyway ssh login prints the sftp command)`);
say();
say(`  database     ${databaseUrl ? `PostgreSQL ${new URL(databaseUrl).host}${new URL(databaseUrl).pathname}` : 'embedded PostgreSQL (PGlite, in memory; set DATABASE_URL for PostgreSQL)'}`);
say(`  store        ${config.REDIS_URL ? `Redis ${new URL(config.REDIS_URL).host}` : 'embedded (in memory; set REDIS_URL for Redis)'}`);
say(`  broker       ${config.AMQP_URL ? `RabbitMQ ${amqpUrls(config.AMQP_URL).map(redactedUrl).join(', ')}` : 'embedded (in memory; set AMQP_URL for RabbitMQ)'}`);
say(`  scanner      clamd at ${process.env.CLAMD_ADDRESS ?? 'unix:/run/clamav/clamd.ctl'} (CLAMD_ADDRESS); while none answers, uploads wait as scan_pending (README "Scanning")`);
say(`  CA           ${join(home, 'pki', 'ca.crt')}`);
say(`  logs         ${logsDir}/<service>.log`);
say(`  demo tenant  ${DEMO_TENANT}, feed ${DEMO_FEED}, product ${DEMO_PRODUCT.product} ${DEMO_PRODUCT.versions}; users in ${join(home, 'demo-credentials.json')}`);
say(`  downloader   ${credentials.downloader.email}: log in at PAS with scope=releases (the releases site's browser login)`);
say(`  operator     ${credentials.operator.email} (tenant ${VENDOR_TENANT}; password in demo-credentials.json): log in at PAS with scope=operator and a second factor:`);
say(`               pnpm keyway login ${credentials.operator.email} --otp <code>, the code from an authenticator app given`);
say('               operator.otpauth_uri, or one of operator.recovery_codes (each works once), both in demo-credentials.json');
say(`  importer     writing batches to ${sinkPath} (DPoP key ${importerKeyFile})`);
say();

const status = setInterval(() => {
  say(`[${new Date().toISOString()}] published ${producer.published()} batches, importer wrote ${importer.stats.written}`);
}, 10_000);

onShutdown(fileLogger('launcher'), [() => clearInterval(status), stopRenewing, () => producer.stop(), () => importer.stop(), () => suite.close()]);
