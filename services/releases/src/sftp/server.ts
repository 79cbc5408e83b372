import { randomUUID } from 'node:crypto';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { Logger } from '@keyway/kit';
import ssh2, { type Algorithms, type Connection, type PrivateKeys } from 'ssh2';
import { authenticator, type AuthenticateDeps } from './authenticate.ts';
import type { HostIdentity } from './host-key.ts';
import { serveSftp, type SftpCaller, type SftpDeps } from './session.ts';

export interface SftpServerOptions {
  host: string;
  /** 0: any free port */
  port: number;
  identity: HostIdentity;
  /** a connection that has not authenticated by then is cut (sshd's LoginGraceTime) */
  loginGraceMs?: number;
  /** connections at once (sshd's MaxStartups is for unauthenticated ones; this bounds all) */
  maxConnections?: number;
}

/**
 * Only what OpenSSH offers by default and our stack verifies: curve25519 key exchange, AEAD ciphers
 * first (AES-GCM is the fastest in Node, with AES-NI), no SHA-1 MACs, no CBC, no RSA host keys.
 */
const ALGORITHMS: Algorithms = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256'],
  cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes256-ctr'],
  hmac: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'],
  compress: ['none'],
};

/**
 * The distribution center's SFTP front (issue 17): SSH with public-key authentication only
 * (authenticate.ts), one subsystem (sftp), no shell, exec, forwarding or agent. Each session serves
 * the releases tree (session.ts) as the caller, with their rights asked at every step.
 */
export async function startSftpServer(options: SftpServerOptions, deps: SftpDeps & Omit<AuthenticateDeps, 'audit' | 'logger' | 'now'>) {
  const logger: Logger = deps.logger;
  const authenticate = authenticator({ ...deps, now: deps.now });
  const connections = new Set<Connection>();
  const authenticated = new WeakSet<Socket>();
  const server = new ssh2.Server(
    {
      hostKeys: [{ key: options.identity.privateKey, certificate: () => options.identity.certificate() } as unknown as PrivateKeys[number]],
      algorithms: ALGORITHMS,
      ident: 'Keyway',
    },
    (client, info) => {
      const sessionId = randomUUID();
      const fields = { sourceAddress: info.ip, requestId: sessionId, detail: { transport: 'sftp' } };
      let caller: SftpCaller | undefined;
      connections.add(client);
      client.on('authentication', (ctx) => authenticate(ctx, fields, (who) => (caller = who)));
      client.on('ready', () => {
        const socket = (client as unknown as { _sock?: Socket })._sock;
        if (socket) authenticated.add(socket);
        client.on('session', (acceptSession) => {
          const session = acceptSession();
          session.on('sftp', (acceptSftp) => {
            if (!caller) return;
            const sftp = acceptSftp();
            serveSftp(sftp, caller, deps);
            // the client is done: exit status 0 before the channel closes, or OpenSSH's sftp exits 1 after a batch that succeeded
            sftp.once('end', () => {
              const channel = sftp as unknown as { _protocol: { exitStatus(id: number, status: number): void }; outgoing: { id: number; state: string } };
              if (channel.outgoing.state === 'open') channel._protocol.exitStatus(channel.outgoing.id, 0);
              sftp.end();
            });
          });
          // a file server, not a shell: everything else a session may ask is refused
          for (const request of ['pty', 'shell', 'exec', 'subsystem', 'env', 'x11', 'auth-agent', 'window-change', 'signal'] as const) {
            session.on(request as 'shell', (_accept: unknown, reject?: () => void) => reject?.());
          }
        });
        client.on('tcpip', (_accept, reject) => reject());
        client.on('request', (_accept, reject) => reject?.());
      });
      client.on('error', (err) => logger.debug('sftp.connection_error', { err: err.message, ip: info.ip }));
      client.on('close', () => connections.delete(client));
    },
  );
  server.maxConnections = options.maxConnections ?? 256;
  // the grace starts at the TCP connection, not at the SSH version line: a socket that never sends one
  // would otherwise hold one of maxConnections for ever
  const loginGraceMs = options.loginGraceMs ?? 60_000;
  (server as unknown as { _srv: NetServer })._srv.prependListener('connection', (socket: Socket) => {
    const grace = setTimeout(() => {
      if (!authenticated.has(socket)) socket.destroy();
    }, loginGraceMs);
    grace.unref();
    socket.once('close', () => clearTimeout(grace));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err: Error) => logger.error('sftp.server_error', { err }));
  const port = (server.address() as AddressInfo).port;
  logger.info('sftp.listening', { host: options.host, port });
  return {
    port,
    async close(): Promise<void> {
      options.identity.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const client of connections) client.end();
        // a client that does not answer the disconnect is cut
        setTimeout(() => {
          for (const client of connections) (client as unknown as { _sock?: Socket })._sock?.destroy();
          resolve();
        }, 2000).unref();
      });
    },
  };
}
export type SftpServer = Awaited<ReturnType<typeof startSftpServer>>;
