import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { AMQP_URL, REDIS_URL, startSuite, testPkiDir } from '@keyway/testkit';

/**
 * Two child processes of the idle long-poll benchmark (bench/idle-polls.ts), which talk to it over
 * the IPC channel: `services`, the suite (the six services on RabbitMQ, Redis and PostgreSQL) the
 * measured topic instance relies on, and `holders` (with a raised file-descriptor limit), the
 * clients holding the long polls open.
 */

/** One tenant's feed and a SAS key for it (listen for the idle ones, send for the publisher). */
export interface Feed {
  tenant: string;
  topic: string;
  key: string;
}

export type FromChild =
  /** the holders listen for their orders */
  | { t: 'started' }
  /** the suite's URLs, where its PKI is, the topic service's database, and the feeds */
  | { t: 'ready'; topicUrl: string; pacUrl: string; entitlementUrl: string; pkiDir: string; databaseUrl: string; caPem: string; idle: Feed[]; publisher: Feed }
  /** every hold connected and its first receive sent; 204s and failures so far */
  | { t: 'holding'; open: number; rampSec: number; answered: number; failed: number }
  | { t: 'counts'; answered: number; failed: number; lastError?: string }
  | { t: 'failed'; error: string };

export type ToChild = { t: 'hold'; topicUrl: string; caPem: string; idle: Feed[]; count: number; timeoutSec: number; sources: number } | { t: 'counts' } | { t: 'stop' };

const PASSWORD = 'bench-password-0123456789';
const send = (message: FromChild) => process.send?.(message);
const onMessage = (handler: (message: ToChild) => Promise<void> | void) =>
  process.on('message', (message: ToChild) => {
    Promise.resolve(handler(message)).catch((err: unknown) => send({ t: 'failed', error: String((err as Error).stack ?? err) }));
  });

/** The suite, `idleTenants` tenants whose feeds nobody publishes to, and one publishing tenant. */
async function services(idleTenants: number): Promise<void> {
  const suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
  const feed = async (rights: 'listen' | 'send'): Promise<Feed> => {
    const tenant = `idle-${randomUUID().slice(0, 8)}`;
    await suite.operator.createTenant({ id: tenant, name: 'Bench', feeds: ['edr-events'] });
    const email = `agent@${tenant}.example`;
    await suite.operator.createUser(tenant, { email, password: PASSWORD, roles: ['full-control'] });
    const { refresh_token } = await suite.pas.password(email, PASSWORD);
    return { tenant, topic: 'edr-events', key: (await suite.pac.sas({ refresh_token, rights })).sas_key };
  };
  const idle: Feed[] = [];
  for (let i = 0; i < idleTenants; i++) idle.push(await feed('listen'));
  const publisher = await feed('send');
  const close = async () => {
    await suite.close();
    process.exit(0);
  };
  onMessage((message) => (message.t === 'stop' ? close() : undefined));
  // an interrupted bench still drops the suite's database, keys and queues
  process.once('SIGTERM', () => void close());
  process.once('SIGINT', () => void close());
  send({
    t: 'ready',
    topicUrl: suite.urls.topic,
    pacUrl: suite.urls.pac,
    entitlementUrl: suite.urls.entitlement,
    pkiDir: testPkiDir(),
    databaseUrl: suite.database!.serviceUrl('topic'),
    caPem: suite.pki.ca.certPem,
    idle,
    publisher,
  });
}

/**
 * `count` long polls, spread over the idle feeds, each on a connection of its own and sent again as
 * soon as it answers (204 after timeoutSec), until stopped. Connections are opened RAMP at a time,
 * from `sources` loopback addresses (127.0.1.x), as many SIEMs would: the listener caps the
 * connections of one address (MAX_CONNECTIONS_PER_SOURCE, 256).
 */
function holders(): void {
  const RAMP = 100;
  let answered = 0;
  let failed = 0;
  let lastError: string | undefined;
  let stopping = false;
  let agent: Agent | undefined;
  onMessage(async (message) => {
    if (message.t === 'counts') send({ t: 'counts', answered, failed, lastError });
    else if (message.t === 'stop') {
      stopping = true;
      agent?.destroy();
      process.exit(0);
    } else if (message.t === 'hold') {
      const { topicUrl, caPem, idle, count, timeoutSec, sources } = message;
      agent = new Agent({ ca: caPem, keepAlive: true, maxSockets: Infinity, minVersion: 'TLSv1.2' });
      const url = new URL(topicUrl);
      /** one receive; resolves `sent` once its request is on a connected socket, the promise when it is answered */
      const receive = (feed: Feed, localAddress: string, sent: () => void) =>
        new Promise<boolean>((resolve) => {
          const req = request(
            {
              agent,
              localAddress,
              host: url.hostname,
              port: url.port,
              method: 'POST',
              path: `/tenants/${feed.tenant}/topics/${feed.topic}/subscriptions/default/messages/head?timeout=${timeoutSec}`,
              headers: { authorization: feed.key, 'content-length': 0 },
            },
            (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => (body += chunk));
              res.on('end', () => {
                if (res.statusCode === 204) answered += 1;
                else {
                  failed += 1;
                  lastError = `${res.statusCode} ${body.slice(0, 200)}`;
                }
                resolve(res.statusCode === 204);
              });
            },
          );
          req.on('socket', (socket) => {
            if (!socket.connecting) sent();
            else socket.once('secureConnect', sent);
          });
          req.on('error', (err) => {
            if (!stopping) {
              failed += 1;
              lastError = err.message;
            }
            sent();
            resolve(false);
          });
          req.end();
        });
      const hold = async (feed: Feed, localAddress: string, connected: () => void) => {
        let first = true;
        while (!stopping) {
          const ok = await receive(feed, localAddress, first ? connected : () => undefined);
          first = false;
          // a refused or failed poll is not sent again in a tight loop
          if (!ok) await sleep(1000);
        }
      };
      const started = Date.now();
      let next = 0;
      const ramp = async () => {
        while (next < count) {
          const i = next++;
          await new Promise<void>((connected) => void hold(idle[i % idle.length]!, `127.0.1.${1 + (i % sources)}`, connected));
        }
      };
      await Promise.all(Array.from({ length: RAMP }, ramp));
      send({ t: 'holding', open: count, rampSec: (Date.now() - started) / 1000, answered, failed });
    }
  });
  send({ t: 'started' });
}

const role = process.argv[2];
if (role === 'services') await services(Number(process.argv[3] ?? 20));
else if (role === 'holders') holders();
else throw new Error(`unknown role ${role}`);
