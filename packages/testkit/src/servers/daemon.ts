import { execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

/** the lowest port the kernel hands to outgoing connections */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 20_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

const handedOut = new Set<number>();

/**
 * A loopback port nothing listens on right now, for a rig that then binds it for its whole life.
 * Taken below the kernel's ephemeral range: a port from that range, once freed, may become the local
 * port of any outgoing connection before the rig binds it (seen under the whole suite's load: a
 * service process exiting on EADDRINUSE). Never the same port twice in one process.
 */
export async function freePort(): Promise<number> {
  const high = ephemeralLow();
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const port = 10_000 + Math.floor(Math.random() * (high - 10_000));
    if (handedOut.has(port) || !(await canListen(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('no free loopback port below the ephemeral range');
}

export const portAccepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/**
 * A scratch directory owned by `user` when the tests run as root: PostgreSQL and RabbitMQ refuse to
 * run as root, so they run as their own OS user and must be able to write here.
 */
export function scratchDir(name: string, user?: string): string {
  const dir = mkdtempSync(join(tmpdir(), `keyway-${name}-`));
  if (user !== undefined) ownedBy(dir, user);
  return dir;
}

/** Gives `path` to `user` when the tests run as root (a server running as that user must own it); as is otherwise. */
export function ownedBy(path: string, user: string): void {
  if (!asRoot()) return;
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  chownSync(path, uid, gid);
}

const asRoot = (): boolean => process.getuid?.() === 0;

/**
 * The command line that runs `command` as `user` when we are root (as is otherwise). setpriv execs in
 * place, unlike runuser, whose session would answer our stop signal with its own SIGKILL after 2 s.
 */
export const asUser = (user: string, command: string, args: string[]): [string, string[]] =>
  asRoot() ? ['setpriv', [`--reuid=${user}`, `--regid=${user}`, '--init-groups', '--', command, ...args]] : [command, args];

/** What every private server rig answers: its port and process, stop and start on the same port, and close (stop and remove its files). */
export interface PrivateServer {
  port: number;
  /** the server's process (group) id; undefined while stopped */
  pid(): number | undefined;
  stop(): Promise<void>;
  /** SIGKILL to the whole process group, as a crash or an OOM kill would end it: no shutdown of its own */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** stop, then start on the same port (what survives is each server's own: see its rig) */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** How a rig runs its server: the command line, when it is ready, how it stops, and the scratch directory close() removes. */
export interface ServerSpec {
  what: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  port: number;
  dir: string;
  ready: () => Promise<boolean>;
  readyTimeoutMs: number;
  stopSignal?: NodeJS.Signals;
  stopGraceMs?: number;
}

/** Starts the server and answers its lifecycle; every rig's start, stop, restart and close are these. */
export async function runPrivateServer(spec: ServerSpec): Promise<PrivateServer> {
  let daemon: Daemon | undefined;
  const start = async () => {
    if (daemon) return;
    daemon = spawnDaemon(spec.command, spec.args, { env: spec.env, cwd: spec.cwd });
    await waitUntil(daemon, spec.what, spec.ready, spec.readyTimeoutMs);
  };
  const stop = async (signal = spec.stopSignal, graceMs = spec.stopGraceMs) => {
    await daemon?.stop(signal, graceMs);
    daemon = undefined;
  };
  await start();
  return {
    port: spec.port,
    pid: () => daemon?.pid,
    start,
    stop: () => stop(),
    kill: () => stop('SIGKILL', 0),
    async restart() {
      await stop();
      await start();
    },
    async close() {
      await stop();
      rmSync(spec.dir, { recursive: true, force: true });
    },
  };
}

interface Daemon {
  pid: number;
  /**
   * `signal` (SIGTERM) to the daemon, which shuts down its children its own way; SIGKILL to the whole
   * group after `graceMs`; resolves once no process of the group is left
   */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  /** the last output lines, for an error message */
  output(): string;
}

/** Whether any process of this group still runs (also for tests that prove a rig leaves nothing behind). */
export const processGroupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Spawns a server in a process group of its own, so stop() reaches the wrappers (the rabbitmq-server
 * script) and everything they started, and nothing outside it.
 */
function spawnDaemon(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Daemon {
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env }, cwd: options.cwd });
  if (child.pid === undefined) throw new Error(`${command} did not start`);
  const pid = child.pid;
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.on('error', (err) => keep(Buffer.from(String(err))));
  return {
    pid,
    output: () => log,
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (!processGroupAlive(pid)) return;
      try {
        process.kill(pid, signal);
      } catch {
        // the leader is gone already; what is left of its group gets SIGKILL below
      }
      const deadline = Date.now() + graceMs;
      while (processGroupAlive(pid)) {
        if (Date.now() > deadline) {
          try {
            process.kill(-pid, 'SIGKILL');
          } catch {
            // the group ended since it was checked
          }
        }
        await sleep(50);
      }
    },
  };
}

/** Polls `ready` until it holds; fails early with the daemon's output when its process group is gone. */
async function waitUntil(daemon: Daemon, what: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready()) return;
    if (!processGroupAlive(daemon.pid)) throw new Error(`${what} exited before it was ready:\n${daemon.output()}`);
    if (Date.now() > deadline) {
      await daemon.stop('SIGKILL');
      throw new Error(`${what} not ready after ${timeoutMs} ms:\n${daemon.output()}`);
    }
    await sleep(100);
  }
}
