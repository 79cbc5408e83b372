import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type PrivateServer, portAccepts, runPrivateServer, scratchDir } from './daemon.ts';

/**
 * The EICAR anti-virus test file (eicar.org), 68 bytes. Kept in two pieces so this source file is not
 * itself flagged by a scanner on a developer's machine.
 */
export const EICAR = Buffer.from(['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'].join(''), 'latin1');

export interface ClamdServer extends PrivateServer {
  /** tcp://127.0.0.1:<port> */
  address: string;
  /** unix:<scratch>/clamd.sock, the same clamd on its LocalSocket */
  socketAddress: string;
  /** what clamd reports for EICAR: the rig's own signature, suffixed as clamd marks signatures not from ClamAV's databases */
  eicarSignature: string;
}

/**
 * A private clamd (Debian's clamav-daemon; test/prerequisites.sh installs it) on a free loopback port
 * and a socket in its scratch directory, with its own clamd.conf and a signature database of one
 * signature: EICAR anywhere in the stream (this machine cannot fetch ClamAV's official ones; clamd
 * refuses to start with no database). Loads in a fraction of a second. `conf` adds clamd.conf lines
 * (a later line wins), e.g. { MaxFileSize: '1M' }.
 */
export async function startClamdServer(options: { conf?: Record<string, string> } = {}): Promise<ClamdServer> {
  const port = await freePort();
  const dir = scratchDir('clamd');
  const database = join(dir, 'db');
  mkdirSync(database);
  // .ndb: name:target type (0, any file):offset (*, anywhere):hex body
  writeFileSync(join(database, 'keyway-test.ndb'), `Keyway.Test.EICAR:0:*:${EICAR.toString('hex')}\n`);
  const socket = join(dir, 'clamd.sock');
  const conf = {
    Foreground: 'yes',
    DatabaseDirectory: database,
    TCPAddr: '127.0.0.1',
    TCPSocket: String(port),
    LocalSocket: socket,
    PidFile: join(dir, 'clamd.pid'),
    TemporaryDirectory: dir,
    StreamMaxLength: '64M',
    // what lies past a limit is reported (Heuristics.Limits.Exceeded.*), not passed as OK: see README, Scanning
    AlertExceedsMax: 'yes',
    ...options.conf,
  };
  const confFile = join(dir, 'clamd.conf');
  writeFileSync(
    confFile,
    `${Object.entries(conf)
      .map(([key, value]) => `${key} ${value}`)
      .join('\n')}\n`,
  );
  // Debian installs clamd in /usr/sbin, which a non-root PATH may lack
  const command = existsSync('/usr/sbin/clamd') ? '/usr/sbin/clamd' : 'clamd';
  const server = await runPrivateServer({
    what: 'clamd',
    command,
    args: [`--config-file=${confFile}`],
    port,
    dir,
    ready: async () => existsSync(socket) && (await portAccepts(port)),
    readyTimeoutMs: 30_000,
  });
  return { ...server, address: `tcp://127.0.0.1:${port}`, socketAddress: `unix:${socket}`, eicarSignature: 'Keyway.Test.EICAR.UNOFFICIAL' };
}
