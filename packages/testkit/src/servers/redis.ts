import { freePort, type PrivateServer, portAccepts, runPrivateServer, scratchDir } from './daemon.ts';

export interface RedisServer extends PrivateServer {
  /** redis://127.0.0.1:<port> (no user: the default user, unless the rig's arguments changed it) */
  url: string;
  /** stop and start again on the same port, EMPTY: the rig runs without RDB snapshots or an AOF */
  restart(): Promise<void>;
}

/**
 * A private redis-server on a free loopback port, with no persistence, for tests that restart or
 * reconfigure Redis (the machine's own server is never touched). `args` are more redis-server
 * options, e.g. ['--aclfile', path].
 */
export async function startRedisServer(options: { args?: string[] } = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = scratchDir('redis');
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', ...(options.args ?? [])];
  const server = await runPrivateServer({ what: 'redis-server', command: 'redis-server', args, port, dir, ready: () => portAccepts(port), readyTimeoutMs: 10_000 });
  return { ...server, url: `redis://127.0.0.1:${port}` };
}
