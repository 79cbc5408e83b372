import { generateKeyPairSync } from 'node:crypto';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '@keyway/kit';
import { openSshPrivateKey } from '@keyway/ssh';
import { startSftpServer } from './server.ts';
import type { SftpDeps } from './session.ts';

/** The transport alone: no login gets far enough to need the catalog, the IdP or PAS. */
const transportOnly = { logger: silentLogger } as unknown as Parameters<typeof startSftpServer>[1] & SftpDeps;
const identity = { privateKey: openSshPrivateKey(generateKeyPairSync('ed25519').privateKey), certificate: () => Buffer.alloc(0), close: () => undefined };

/** How long the server keeps a connection that sends `sent` and then nothing. */
async function heldFor(port: number, sent: string): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(sent));
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Date.now() - started));
    setTimeout(() => reject(new Error('still open after 5 s')), 5000).unref();
  });
}

describe('the SFTP listener', () => {
  it('cuts a connection that has not logged in within the grace, whether it sent its SSH version line or nothing at all', async () => {
    const server = await startSftpServer({ host: '127.0.0.1', port: 0, identity, loginGraceMs: 300 }, transportOnly);
    try {
      for (const sent of ['', 'SSH-2.0-OpenSSH_9.2\r\n']) {
        const held = await heldFor(server.port, sent);
        expect(held).toBeGreaterThanOrEqual(250);
        expect(held).toBeLessThan(2000);
      }
    } finally {
      await server.close();
    }
  });
});
