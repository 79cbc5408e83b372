import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { asUser, freePort, ownedBy, type PrivateServer, portAccepts, runPrivateServer, scratchDir } from './daemon.ts';

const run = promisify(execFile);

/** stop() is graceful: durable queues and their persistent messages stay on disk for start(). */
export interface RabbitNode extends PrivateServer {
  /** amqp://guest:guest@127.0.0.1:<port> */
  url: string;
  /** the Erlang node name, keyway-test-<port>@localhost */
  name: string;
}

/** Where a node lives: its own directory (Mnesia, logs, config) and the HOME whose .erlang.cookie it shares with the nodes it may cluster with. */
interface NodeSpec {
  dir: string;
  home: string;
  port: number;
  distPort: number;
  /** the epmd the node registers with; unset: the machine's (4369) */
  epmdPort?: number;
  /** a running node this one joins at its first boot (classic_config peer discovery); later boots rejoin the cluster their Mnesia names */
  join?: string;
}

const nodeName = (port: number) => `keyway-test-${port}@localhost`;

/** What the server and rabbitmqctl need to find and reach a node of ours, and nothing of the machine's. */
const nodeEnv = (spec: Pick<NodeSpec, 'home' | 'epmdPort'>): NodeJS.ProcessEnv => ({
  HOME: spec.home,
  // the machine's rabbitmq-env.conf names the machine's node
  RABBITMQ_CONF_ENV_FILE: '/dev/null',
  ...(spec.epmdPort === undefined ? {} : { ERL_EPMD_PORT: String(spec.epmdPort) }),
});

async function runRabbitNode(spec: NodeSpec): Promise<RabbitNode> {
  const { dir, port } = spec;
  const name = nodeName(port);
  const config = join(dir, 'rabbitmq.conf');
  const discovery = spec.join ? `cluster_formation.peer_discovery_backend = classic_config\ncluster_formation.classic_config.nodes.1 = ${spec.join}\n` : '';
  writeFileSync(config, `listeners.tcp.local = 127.0.0.1:${port}\n${discovery}`, { mode: 0o644 });
  const env = {
    ...nodeEnv(spec),
    RABBITMQ_NODENAME: name,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(spec.distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: config,
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_ENABLED_PLUGINS: '',
    RABBITMQ_PID_FILE: join(dir, 'pid'),
  };
  const [command, args] = asUser('rabbitmq', '/usr/lib/rabbitmq/bin/rabbitmq-server', []);
  // the wrapper script turns SIGTERM into a graceful stop of the Erlang VM
  const server = await runPrivateServer({
    what: `rabbitmq-server ${name}`,
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
  }).catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  return { ...server, name, url: `amqp://guest:guest@127.0.0.1:${port}` };
}

/**
 * A second RabbitMQ node of its own (own name, AMQP and distribution ports, Mnesia directory, Erlang
 * cookie), for tests that take the broker down; the machine's node is never touched. As root it runs
 * as the `rabbitmq` OS user. Starts in about 10 s.
 */
export async function startRabbitNode(): Promise<RabbitNode> {
  const dir = scratchDir('rabbit', 'rabbitmq');
  // HOME holds the node's .erlang.cookie: one of its own, so it can join nothing it should not
  return runRabbitNode({ dir, home: dir, port: await freePort(), distPort: await freePort() });
}

export interface RabbitCluster {
  nodes: RabbitNode[];
  /** every node's URL, comma-separated, as AMQP_URL takes a cluster */
  url: string;
  /** rabbitmqctl against one node (`-n` is added), its standard output */
  ctl(node: RabbitNode, ...args: string[]): Promise<string>;
  /** closes every node, the cluster's epmd and all their files; safe after a failed start or a kill */
  close(): Promise<void>;
}

/**
 * A RabbitMQ cluster of `size` nodes of our own on loopback, for tests that kill a node: distinct
 * names, AMQP and distribution ports, Mnesia directories, one Erlang cookie in a private HOME, and an
 * epmd of its own (so the nodes see only each other and nothing of the machine's). Nodes after the
 * first join it as they boot (peer discovery: no stop_app, join_cluster, start_app round of
 * rabbitmqctl, each a VM start of its own); resolves once all of them run as one cluster.
 * A node that is killed (kill()) and started again (start()) rejoins by itself. Quorum queues
 * declared once it resolves have a member on every node. About 30 s for three nodes.
 */
export async function startRabbitCluster(size = 3): Promise<RabbitCluster> {
  const home = scratchDir('rabbit-cluster', 'rabbitmq');
  const nodes: RabbitNode[] = [];
  let epmd: PrivateServer | undefined;
  const close = async () => {
    // nodes first: a node whose epmd went first would only log its loss
    await Promise.allSettled(nodes.map((node) => node.close()));
    await epmd?.close();
    rmSync(home, { recursive: true, force: true });
  };
  try {
    const cookie = join(home, '.erlang.cookie');
    writeFileSync(cookie, randomBytes(20).toString('hex'), { mode: 0o400 });
    ownedBy(cookie, 'rabbitmq');
    const epmdPort = await freePort();
    // in the foreground (no -daemon), so it is ours to stop and stays in its process group
    const [command, args] = asUser('rabbitmq', 'epmd', ['-port', String(epmdPort)]);
    epmd = await runPrivateServer({ what: 'epmd', command, args, port: epmdPort, dir: home, ready: () => portAccepts(epmdPort), readyTimeoutMs: 10_000 });

    const ctlEnv = nodeEnv({ home, epmdPort });
    const ctl = async (node: RabbitNode, ...ctlArgs: string[]): Promise<string> => {
      const [cmd, cmdArgs] = asUser('rabbitmq', '/usr/lib/rabbitmq/bin/rabbitmqctl', ['-n', node.name, ...ctlArgs]);
      const { stdout } = await run(cmd, cmdArgs, { env: { ...process.env, ...ctlEnv }, timeout: 60_000 });
      return stdout;
    };

    const node = async (join?: string) => runRabbitNode({ dir: scratchDir('rabbit', 'rabbitmq'), home, port: await freePort(), distPort: await freePort(), epmdPort, join });
    const first = await node();
    nodes.push(first);
    const started = await Promise.allSettled(Array.from({ length: size - 1 }, () => node(first.name)));
    // every node that came up is closed by close(), also when another did not
    for (const outcome of started) if (outcome.status === 'fulfilled') nodes.push(outcome.value);
    const failed = started.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    await ctl(first, 'await_online_nodes', String(size), '--timeout', '60');
    return { nodes, url: nodes.map((n) => n.url).join(','), ctl, close };
  } catch (err) {
    await close();
    throw err;
  }
}
