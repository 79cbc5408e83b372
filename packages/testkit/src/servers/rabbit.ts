import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { asUser, freePort, type PrivateServer, portAccepts, runPrivateServer, scratchDir } from './daemon.ts';

/** stop() is graceful: durable queues and their persistent messages stay on disk for start(). */
export interface RabbitNode extends PrivateServer {
  /** amqp://guest:guest@127.0.0.1:<port> */
  url: string;
}

/**
 * A second RabbitMQ node of its own (own name, AMQP and distribution ports, Mnesia directory, Erlang
 * cookie), for tests that take the broker down; the machine's node is never touched. As root it runs
 * as the `rabbitmq` OS user. Starts in about 10 s.
 */
export async function startRabbitNode(): Promise<RabbitNode> {
  const port = await freePort();
  const distPort = await freePort();
  const dir = scratchDir('rabbit', 'rabbitmq');
  const name = `keyway-test-${port}@localhost`;
  const config = join(dir, 'rabbitmq.conf');
  writeFileSync(config, `listeners.tcp.local = 127.0.0.1:${port}\n`, { mode: 0o644 });
  const env = {
    // HOME holds the node's .erlang.cookie: one of its own, so it can join nothing it should not
    HOME: dir,
    RABBITMQ_NODENAME: name,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: config,
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_ENABLED_PLUGINS: '',
    RABBITMQ_PID_FILE: join(dir, 'pid'),
    // the machine's rabbitmq-env.conf names the machine's node
    RABBITMQ_CONF_ENV_FILE: '/dev/null',
  };
  const [command, args] = asUser('rabbitmq', '/usr/lib/rabbitmq/bin/rabbitmq-server', []);
  // the wrapper script turns SIGTERM into a graceful stop of the Erlang VM
  const server = await runPrivateServer({
    what: 'rabbitmq-server',
    command,
    args,
    env,
    cwd: dir,
    port,
    dir,
    ready: () => portAccepts(port),
    readyTimeoutMs: 60_000,
    stopSignal: 'SIGTERM',
    stopGraceMs: 30_000,
  });
  return { ...server, url: `amqp://guest:guest@127.0.0.1:${port}` };
}
