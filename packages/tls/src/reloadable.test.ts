import { X509Certificate } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevCa, issueCert, issueServiceCert, reloadingAgent, staticTls, watchTls } from './index.ts';
import type { CertPair, DevCa, TlsFiles, WatchedTls } from './index.ts';

const SLOW = 60_000;
let ca: DevCa;
let tmp: string;
beforeAll(async () => {
  ca = createDevCa();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'keyway-reload-'));
}, SLOW);
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** as ensureDevPki and cert-manager do: a new file renamed over the old one */
async function replace(file: string, data: string): Promise<void> {
  await writeFile(`${file}.tmp`, data, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

async function filesWith(name: string, pair: CertPair, caPem: string): Promise<TlsFiles> {
  const files = { certFile: path.join(tmp, `${name}.crt`), keyFile: path.join(tmp, `${name}.key`), caFile: path.join(tmp, `${name}-ca.crt`) };
  await writeFile(files.certFile, pair.certPem);
  await writeFile(files.keyFile, pair.keyPem, { mode: 0o600 });
  await writeFile(files.caFile, caPem);
  return files;
}

const serial = (pem: string) => new X509Certificate(pem).serialNumber;

function recorder() {
  const lines: Array<{ msg: string; fields?: Record<string, unknown> }> = [];
  const log = (msg: string, fields?: Record<string, unknown>) => void lines.push({ msg, fields });
  return { lines, log: { info: log, warn: log } };
}

describe('watchTls', () => {
  it(
    'takes a renewed certificate written to its files; keeps the old one for a mismatched key, an expired certificate or missing files',
    async () => {
      const first = issueServiceCert(ca, 'pas');
      const files = await filesWith('pas', first, ca.certPem);
      const { lines, log } = recorder();
      const source: WatchedTls = watchTls(files, { intervalMs: 60_000, log });
      try {
        const seen: string[] = [];
        source.onChange((material) => seen.push(serial(material.certPem)));
        expect(source.current().certPem).toBe(first.certPem);
        expect(source.generation).toBe(0);
        expect(await source.reload()).toBe(false);

        const second = issueServiceCert(ca, 'pas');
        await replace(files.keyFile, second.keyPem);
        // half-way: the new key with the old certificate is not a usable whole
        expect(await source.reload()).toBe(false);
        expect(source.current().certPem).toBe(first.certPem);
        expect(lines.at(-1)).toMatchObject({ msg: 'tls.reload_failed', fields: { kept: 'previous certificate' } });
        await replace(files.certFile, second.certPem);
        expect(await source.reload()).toBe(true);
        expect(source.current()).toEqual({ certPem: second.certPem, keyPem: second.keyPem, caPem: ca.certPem });
        expect(source.generation).toBe(1);
        expect(seen).toEqual([serial(second.certPem)]);
        expect(lines.at(-1)).toMatchObject({ msg: 'tls.reloaded', fields: { generation: 1, serial: serial(second.certPem) } });
        // never the key in a log line
        expect(JSON.stringify(lines)).not.toContain('PRIVATE KEY');

        // an expired certificate (with its own key) is refused
        const expired = issueCert(ca, { commonName: 'pas', uris: ['spiffe://keyway/pas'], hours: 0.5 / 3600 });
        await new Promise((resolve) => setTimeout(resolve, 1500));
        expect(Date.parse(new X509Certificate(expired.certPem).validTo)).toBeLessThan(Date.now());
        await replace(files.keyFile, expired.keyPem);
        await replace(files.certFile, expired.certPem);
        expect(await source.reload()).toBe(false);
        expect(lines.at(-1)?.fields?.reason).toMatch(/expired/);

        // files gone (a volume remounting): the service keeps serving with what it has
        await rm(files.certFile);
        expect(await source.reload()).toBe(false);
        expect(source.current().certPem).toBe(second.certPem);
        expect(seen).toHaveLength(1);
      } finally {
        source.close();
      }
      // a service does not start on unusable files
      expect(() => watchTls(files, { intervalMs: 1000 })).toThrow();
    },
    SLOW,
  );

  it(
    'polls the files on its interval',
    async () => {
      const first = issueServiceCert(ca, 'pac');
      const files = await filesWith('pac', first, ca.certPem);
      const source = watchTls(files, { intervalMs: 50 });
      try {
        const second = issueServiceCert(ca, 'pac');
        await replace(files.keyFile, second.keyPem);
        await replace(files.certFile, second.certPem);
        await expect.poll(() => source.current().certPem, { timeout: 5000 }).toBe(second.certPem);
      } finally {
        source.close();
      }
    },
    SLOW,
  );
});

describe('reloadingAgent', () => {
  /** an mTLS server trusting `caPem` that answers with the serial of the client certificate it saw */
  async function serialReporter(server: CertPair, caPem: string) {
    const listener = https.createServer({ cert: server.certPem, key: server.keyPem, ca: caPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, (req, res) => {
      const socket = req.socket as TLSSocket;
      res.end(JSON.stringify({ authorized: socket.authorized, serial: socket.getPeerCertificate().serialNumber ?? null }));
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    return { port: (listener.address() as AddressInfo).port, close: () => new Promise<void>((resolve) => listener.close(() => resolve()) && listener.closeAllConnections()) };
  }

  const get = (agent: https.Agent, port: number) =>
    new Promise<{ authorized: boolean; serial: string | null }>((resolve, reject) => {
      https
        .get({ host: 'localhost', port, path: '/', agent }, (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve(JSON.parse(body)));
        })
        .on('error', reject);
    });

  it(
    'presents the renewed client certificate on the next request (no pooled connection or TLS session of the old one), and trusts a rotated CA bundle',
    async () => {
      const first = issueServiceCert(ca, 'topic');
      const files = await filesWith('topic', first, ca.certPem);
      const source = watchTls(files, { intervalMs: 60_000 });
      const agent = reloadingAgent(source, { presentCertificate: true, keepAlive: true });
      const server = await serialReporter(issueServiceCert(ca, 'pac'), ca.certPem);
      try {
        expect(await get(agent, server.port)).toEqual({ authorized: true, serial: serial(first.certPem) });
        expect(await get(agent, server.port)).toEqual({ authorized: true, serial: serial(first.certPem) });

        const second = issueServiceCert(ca, 'topic');
        await replace(files.keyFile, second.keyPem);
        await replace(files.certFile, second.certPem);
        await source.reload();
        expect(await get(agent, server.port)).toEqual({ authorized: true, serial: serial(second.certPem) });

        // CA rotation: a peer already on the new CA is trusted once the bundle holds old and new
        const nextCa = createDevCa();
        const rotatedServer = await serialReporter(issueServiceCert(nextCa, 'pac'), `${ca.certPem}${nextCa.certPem}`);
        try {
          await expect(get(agent, rotatedServer.port)).rejects.toMatchObject({
            code: expect.stringMatching(/^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/),
          });
          await replace(files.caFile, `${ca.certPem}${nextCa.certPem}`);
          await source.reload();
          expect(await get(agent, rotatedServer.port)).toEqual({ authorized: true, serial: serial(second.certPem) });
          // and the old CA's peers still
          expect(await get(agent, server.port)).toMatchObject({ authorized: true });
        } finally {
          await rotatedServer.close();
        }

        // without presentCertificate: trusts the same bundle, shows no certificate
        const anonymous = reloadingAgent(source, { presentCertificate: false });
        expect(await get(anonymous, server.port)).toEqual({ authorized: false, serial: null });
        anonymous.destroy();
      } finally {
        agent.destroy();
        source.close();
        await server.close();
      }
    },
    SLOW,
  );

  it('staticTls never changes', () => {
    const material = { certPem: 'c', keyPem: 'k', caPem: 'a' };
    const source = staticTls(material);
    expect(source.current()).toBe(material);
    expect(source.trustDomain).toBe('keyway');
    expect(source.generation).toBe(0);
  });
});
