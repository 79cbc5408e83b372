import { readFileSync } from 'node:fs';
import { pacClient, pasClient, topicClient } from '@keyway/clients';
import { createLogger, loadConfig, onShutdown } from '@keyway/kit';
import { createAgent } from './agent.ts';
import { ImporterEnv } from './config.ts';
import { fileSink } from './sinks/file.ts';

const config = loadConfig(ImporterEnv);
const logger = createLogger({ service: 'importer', level: config.LOG_LEVEL });
const caPem = readFileSync(config.TLS_CA_FILE, 'utf8');
const sink = await fileSink(config.SINK_FILE);
const agent = createAgent(
  {
    credentials: { kind: 'password', username: config.KEYWAY_USERNAME, password: config.KEYWAY_PASSWORD, scope: config.KEYWAY_SCOPE },
    resource: config.RESOURCE,
    subscription: config.SUBSCRIPTION,
    receiveTimeoutSec: config.RECEIVE_TIMEOUT_SEC,
  },
  {
    pas: pasClient({ baseUrl: config.PAS_URL, caPem }),
    pac: pacClient({ baseUrl: config.PAC_URL, caPem }),
    topic: topicClient({ baseUrl: config.TOPIC_URL, caPem }),
    sink,
    logger,
  },
);
agent.start();
logger.info('importer running', { sink: sink.description });
onShutdown(logger, [() => agent.stop()]);
