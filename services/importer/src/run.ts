import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pacClient, pasClient, topicClient } from '@keyway/clients';
import { createLogger, type Logger } from '@keyway/kit';
import { createAgent, type Agent } from './agent.ts';
import { fileCheckpoint } from './checkpoint.ts';
import type { ImporterEnv } from './config.ts';
import { assertionAlgFor } from './credentials/client-assertion.ts';
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
 * The agent as configured by the environment (main.ts, `keyway importer run`): sink, checkpoint and
 * clients built from ImporterEnv, started. The caller stops it on SIGTERM/SIGINT.
 */
export async function startImporter(config: ImporterEnv, logger: Logger): Promise<Agent> {
  const caPem = readFileSync(config.TLS_CA_FILE, 'utf8');
  const sink = await createSink(config);
  const checkpoint = await fileCheckpoint(config.STATE_FILE);
  const agent = createAgent(
    {
      credentials: credentialsFrom(config),
      resource: config.RESOURCE,
      subscription: config.SUBSCRIPTION,
      receiveTimeoutSec: config.RECEIVE_TIMEOUT_SEC,
    },
    {
      pas: pasClient({ baseUrl: config.PAS_URL, caPem }),
      pac: pacClient({ baseUrl: config.PAC_URL, caPem }),
      topic: topicClient({ baseUrl: config.TOPIC_URL, caPem }),
      sink,
      checkpoint,
      logger,
    },
  );
  agent.start();
  logger.info('importer running', { sink: sink.description, stateFile: config.STATE_FILE });
  return agent;
}
