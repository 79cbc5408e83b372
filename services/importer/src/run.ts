import { createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { assertionAlgFor, dpopSigner, loadOrCreateDpopKey, pacClient, pasClient, topicClient } from '@keyway/clients';
import { createLogger, type Logger } from '@keyway/kit';
import { createAgent, type Agent, type AgentHealth } from './agent.ts';
import { fileCheckpoint } from './checkpoint.ts';
import { fileReplayMarker } from './replay-marker.ts';
import type { ImporterEnv } from './config.ts';

import type { Credentials } from './credentials/session.ts';
import { createSink } from './sinks/index.ts';

/** With SINK=stdout, standard output carries the batches: the agent's own log goes to stderr. */
export function importerLogger(config: ImporterEnv): Logger {
  return createLogger({
    service: 'importer',
    level: config.LOG_LEVEL,
    write: config.SINK === 'stdout' ? (line) => process.stderr.write(`${line}\n`) : undefined,
  });
}

/** ImporterEnv's superRefine guarantees exactly one complete set: a key file, or a username and password. */
function credentialsFrom(env: ImporterEnv): Credentials {
  if (env.KEYWAY_PRIVATE_KEY_FILE === undefined) {
    return { kind: 'password', username: env.KEYWAY_USERNAME!, password: env.KEYWAY_PASSWORD!, scope: env.KEYWAY_SCOPE };
  }
  const privateKey = createPrivateKey(readFileSync(env.KEYWAY_PRIVATE_KEY_FILE, 'utf8'));
  return { kind: 'private_key_jwt', clientId: env.KEYWAY_CLIENT_ID!, privateKey, kid: env.KEYWAY_KEY_ID!, alg: assertionAlgFor(privateKey), scope: env.KEYWAY_SCOPE };
}

/**
 * The agents as configured (main.ts, `keyway importer run`): one per feed (importerFeeds), each with
 * its own sink, checkpoint and clients, started; with HEALTH_PORT, their health on 127.0.0.1. The
 * caller stops them on SIGTERM/SIGINT.
 */
export async function startImporter(feeds: ImporterEnv[], logger: Logger): Promise<Importer> {
  const agents: Agent[] = [];
  let health: Server | undefined;
  const stop = async () => {
    await new Promise<void>((resolve) => (health ? health.close(() => resolve()) : resolve()));
    await Promise.all(agents.map((agent) => agent.stop()));
  };
  try {
    for (const config of feeds) agents.push(await startAgent(config, feeds.length > 1 ? logger.child({ feed: agents.length }) : logger));
    const port = feeds[0]?.HEALTH_PORT;
    if (port !== undefined) health = await serveHealth(port, () => agents.map((agent) => agent.health()), logger);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    agents,
    /** the health endpoint's port (HEALTH_PORT, or the one 0 was given) */
    healthPort: health ? (health.address() as AddressInfo).port : undefined,
    stop,
  };
}
export type Importer = { agents: Agent[]; healthPort: number | undefined; stop(): Promise<void> };

async function startAgent(config: ImporterEnv, logger: Logger): Promise<Agent> {
  const caPem = readFileSync(config.TLS_CA_FILE, 'utf8');
  // Before the sink opens: a key file others may read stops the start. One signer for the three
  // services (one key, each server's last nonce). A key of its own even with private_key_jwt: the
  // registered key stays the login identity, this one binds what each login gets.
  const dpop = config.DPOP ? dpopSigner(await loadOrCreateDpopKey(config.DPOP_KEY_FILE)) : undefined;
  const sink = await createSink(config);
  const checkpoint = await fileCheckpoint(config.STATE_FILE);
  const replayMarker = fileReplayMarker(`${config.STATE_FILE}.replay`);
  // a marker that is not one is the operator's to fix before anything starts (ConfigError: exit 78)
  if (config.REPLAY_FROM !== undefined) await replayMarker.replayed();
  const agent = createAgent(
    {
      credentials: credentialsFrom(config),
      resource: config.RESOURCE,
      subscription: config.SUBSCRIPTION,
      pull: config.PULL,
      prefetch: config.PREFETCH,
      streamTimeoutSec: config.STREAM_TIMEOUT_SEC,
      receiveTimeoutSec: config.RECEIVE_TIMEOUT_SEC,
      replayFrom: config.REPLAY_FROM,
    },
    {
      pas: pasClient({ baseUrl: config.PAS_URL, caPem, dpop }),
      pac: pacClient({ baseUrl: config.PAC_URL, caPem, dpop }),
      topic: topicClient({ baseUrl: config.TOPIC_URL, caPem, dpop }),
      sink,
      checkpoint,
      replayMarker,
      logger,
    },
  );
  agent.start();
  logger.info('importer running', { sink: sink.description, stateFile: config.STATE_FILE, pull: config.PULL, ...(dpop && { dpopKeyFile: config.DPOP_KEY_FILE, jkt: dpop.key.jkt }) });
  return agent;
}

/**
 * GET /health on 127.0.0.1 for probes: 200 when every feed is healthy, 503 otherwise, with each
 * feed's health and lag as JSON. Loopback only: it says which tenants this host serves.
 */
async function serveHealth(port: number, feeds: () => AgentHealth[], logger: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/health') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    const all = feeds();
    const healthy = all.every((feed) => feed.healthy);
    res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ healthy, feeds: all }));
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  logger.info('health endpoint listening', { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/health` });
  return server;
}
