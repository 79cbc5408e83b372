import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { asUser, freePort, type PrivateServer, runPrivateServer, scratchDir } from './daemon.ts';

const run = promisify(execFile);

/** Debian's layout: /usr/lib/postgresql/<major>/bin; the newest major installed (KEYWAY_TEST_PG_BINDIR overrides). */
function postgresBinDir(): string {
  const fromEnv = process.env.KEYWAY_TEST_PG_BINDIR;
  if (fromEnv) return fromEnv;
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  const newest = majors.sort((a, b) => Number(b) - Number(a))[0];
  if (newest === undefined) throw new Error(`no PostgreSQL server binaries under ${root} (set KEYWAY_TEST_PG_BINDIR)`);
  return join(root, newest, 'bin');
}

export interface PostgresServer extends PrivateServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres: the cluster's superuser, trust authentication */
  adminUrl: string;
  /** fast shutdown (SIGINT: sessions are cut, nothing is lost), then start on the same port with the same data */
  restart(): Promise<void>;
}

/**
 * A private PostgreSQL cluster (initdb in a scratch directory, trust authentication) on a free
 * loopback port, for tests that stop or restart the database; the machine's own server is never
 * touched. PostgreSQL refuses to run as root, so as root it runs as the `postgres` OS user.
 */
export async function startPostgresServer(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const port = await freePort();
  const dir = scratchDir('postgres', 'postgres');
  const data = join(dir, 'data');
  const [initdb, initdbArgs] = asUser('postgres', join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  await run(initdb, initdbArgs);
  // fsync off: the rig's data only has to outlive a restart of the server, not of the machine
  const [postgres, args] = asUser('postgres', join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off']);
  const ready = async () => {
    try {
      await run(join(bin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port)]);
      return true;
    } catch {
      return false;
    }
  };
  const server = await runPrivateServer({ what: 'postgres', command: postgres, args, port, dir, ready, readyTimeoutMs: 30_000, stopSignal: 'SIGINT' });
  return { ...server, adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres` };
}
