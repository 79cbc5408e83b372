import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDevCa, createEphemeralPki, ensureDevPki, issueCert, renewDevPki } from './index.ts';
import type { CertPair, DevPki } from './index.ts';

// RSA key generation dominates: a few hundred ms per key on a slow machine
const SLOW = 60_000;
const posix = process.platform !== 'win32';

let pki: DevPki;
beforeAll(() => {
  pki = createEphemeralPki(['pas', 'pac']);
}, SLOW);

const servers: https.Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

function pair(name: string): CertPair {
  const found = pki.certs[name];
  if (!found) throw new Error(`no cert for ${name}`);
  return found;
}

/** a service's pair as Node TLS options (server identity or client certificate) */
function tlsIdentity(name: string): { cert: string; key: string } {
  const { certPem, keyPem } = pair(name);
  return { cert: certPem, key: keyPem };
}

async function listen(options: https.ServerOptions, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const server = https.createServer({ minVersion: 'TLSv1.2', ...options }, handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

interface Reply {
  status: number | undefined;
  body: string;
  protocol: string | null;
  authorized: boolean;
}

function get(port: number, options: https.RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // agent: false so no pooled connection carries one test's TLS session into the next
    const req = https.request({ host: '127.0.0.1', port, path: '/', agent: false, ...options }, (res) => {
      const socket = res.socket as TLSSocket;
      const protocol = socket.getProtocol();
      const authorized = socket.authorized;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body, protocol, authorized }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** reports what the server saw of the client certificate */
function peerReport(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket as TLSSocket;
  const peer = socket.getPeerCertificate();
  res.setHeader('content-type', 'application/json');
  res.end(
    JSON.stringify({
      authorized: socket.authorized,
      authorizationError: socket.authorizationError ?? null,
      cn: peer.subject?.CN ?? null,
    }),
  );
}

describe('TLS with the dev CA', () => {
  it('serves a client that trusts only the dev CA, over TLS 1.2+', async () => {
    const port = await listen({ ...tlsIdentity('pas') }, (_req, res) => res.end('hello from pas'));
    const reply = await get(port, { ca: pki.ca.certPem, minVersion: 'TLSv1.2' });
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('hello from pas');
    expect(reply.authorized).toBe(true);
    expect(['TLSv1.2', 'TLSv1.3']).toContain(reply.protocol);

    // also when the host name is checked against the DNS SAN instead of the IP SAN
    const byName = await get(port, { ca: pki.ca.certPem, servername: 'localhost' });
    expect(byName.body).toBe('hello from pas');

    // and TLS 1.2 specifically still works
    const tls12 = await get(port, { ca: pki.ca.certPem, maxVersion: 'TLSv1.2' });
    expect(tls12.protocol).toBe('TLSv1.2');
  });

  it(
    'is refused by a client that does not trust the dev CA',
    async () => {
      const port = await listen({ ...tlsIdentity('pas') }, (_req, res) => res.end('unreachable'));
      const untrusted = /^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|DEPTH_ZERO_SELF_SIGNED_CERT)$/;

      // system trust store only
      await expect(get(port)).rejects.toMatchObject({ code: expect.stringMatching(untrusted) });
      // a different dev CA (another checkout's) is no better
      await expect(get(port, { ca: createDevCa().certPem })).rejects.toMatchObject({
        code: expect.stringMatching(untrusted),
      });
    },
    SLOW,
  );

  it('is refused for a host name the certificate does not cover', async () => {
    const port = await listen({ ...tlsIdentity('pas') }, (_req, res) => res.end('unreachable'));
    await expect(get(port, { ca: pki.ca.certPem, servername: 'pas.example.com' })).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });

  it(
    'mutual TLS: the server authenticates the client certificate and sees its CN',
    async () => {
      const port = await listen({ ...tlsIdentity('pas'), ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: false }, peerReport);

      const withCert = await get(port, { ca: pki.ca.certPem, ...tlsIdentity('pac') });
      expect(JSON.parse(withCert.body)).toEqual({ authorized: true, authorizationError: null, cn: 'pac' });

      const without = await get(port, { ca: pki.ca.certPem });
      expect(JSON.parse(without.body)).toMatchObject({ authorized: false, cn: null });

      // a client certificate from another CA is seen but not authorized
      const foreignCa = createDevCa();
      const foreign = issueCert(foreignCa, { commonName: 'pac' });
      const impostor = await get(port, { ca: pki.ca.certPem, cert: foreign.certPem, key: foreign.keyPem });
      expect(JSON.parse(impostor.body)).toMatchObject({ authorized: false, cn: 'pac' });
    },
    SLOW,
  );
});

describe('certificate contents', () => {
  it('service certificate: SANs with its SPIFFE ID, usages, not a CA, chains to the CA, 12 hours', () => {
    const leaf = new X509Certificate(pair('pas').certPem);
    const ca = new X509Certificate(pki.ca.certPem);
    const sans = (leaf.subjectAltName ?? '').split(', ');
    expect(sans).toContain('DNS:localhost');
    expect(sans).toContain('IP Address:127.0.0.1');
    // ::1 (OpenSSL prints it expanded)
    expect(sans.some((san) => /^IP Address:(::1|0:0:0:0:0:0:0:1)$/.test(san))).toBe(true);
    expect(sans.filter((san) => san.startsWith('URI:'))).toEqual(['URI:spiffe://keyway/pas']);
    expect(leaf.subject).toBe('CN=pas');
    expect(leaf.issuer).toBe('CN=Keyway Development CA');
    expect(leaf.ca).toBe(false);
    // Node exposes the extended key usage OIDs as `keyUsage`
    expect(leaf.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.publicKey.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048 });
    // a positive serial: the first byte is below 0x80
    expect(parseInt(leaf.serialNumber.slice(0, 2), 16)).toBeLessThan(0x80);

    // notBefore is backdated a minute against clock skew
    const hours = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 3_600_000;
    expect(hours).toBeGreaterThan(12);
    expect(hours).toBeLessThan(12.1);
  });

  it('CA: self-signed, CA flag, CN, one year, backdated against clock skew', () => {
    const ca = new X509Certificate(pki.ca.certPem);
    expect(ca.subject).toBe('CN=Keyway Development CA');
    expect(ca.ca).toBe(true);
    expect(ca.checkIssued(ca)).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(ca.publicKey.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048 });
    expect(parseInt(ca.serialNumber.slice(0, 2), 16)).toBeLessThan(0x80);
    const notBefore = Date.parse(ca.validFrom);
    expect(notBefore).toBeLessThan(Date.now() - 30_000);
    expect(Date.parse(ca.validTo) - notBefore).toBeGreaterThan(364 * 86_400_000);
  });

  it(
    'custom SANs and lifetime',
    () => {
      const ca = { certPem: pki.ca.certPem, keyPem: pki.ca.keyPem };
      const cert = issueCert(ca, {
        commonName: 'topic',
        dnsNames: ['topic.internal', 'localhost'],
        ipAddresses: ['10.1.2.3', '2001:db8::1', '::ffff:192.0.2.1'],
        days: 2,
      });
      const x509 = new X509Certificate(cert.certPem);
      expect(x509.subjectAltName?.toLowerCase().split(', ')).toEqual([
        'dns:topic.internal',
        'dns:localhost',
        'ip address:10.1.2.3',
        'ip address:2001:db8:0:0:0:0:0:1',
        'ip address:0:0:0:0:0:ffff:c000:201',
      ]);
      const days = (Date.parse(x509.validTo) - Date.parse(x509.validFrom)) / 86_400_000;
      expect(days).toBeGreaterThan(1.9);
      expect(days).toBeLessThan(2.1);
      expect(() => issueCert(ca, { commonName: 'x', ipAddresses: ['not-an-ip'] })).toThrow(/not an IP/);
      expect(() => issueCert(ca, { commonName: 'x', days: 0 })).toThrow(/days/);
      expect(() => issueCert(ca, { commonName: 'x', hours: -1 })).toThrow(/hours/);
      const hours = new X509Certificate(issueCert(ca, { commonName: 'x', hours: 2 }).certPem);
      expect((Date.parse(hours.validTo) - Date.parse(hours.validFrom)) / 3_600_000).toBeCloseTo(2 + 1 / 60, 2);
    },
    SLOW,
  );

  it(
    'generates a CA and six service certificates (timing logged)',
    () => {
      const names = ['pas', 'pac', 'sas', 'idp', 'topic', 'entitlement'];
      const started = performance.now();
      const six = createEphemeralPki(names);
      const elapsed = performance.now() - started;
      console.log(`createEphemeralPki(CA + ${names.length} certs): ${elapsed.toFixed(0)} ms`);
      expect(Object.keys(six.certs)).toEqual(names);
      // generous: guards against a regression to forge's pure-JS key generation (seconds per key)
      expect(elapsed).toBeLessThan(20_000);
    },
    SLOW,
  );
});

describe('ensureDevPki', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'keyway-pki-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  const mode = async (file: string) => (await stat(file)).mode & 0o777;
  const read = (dir: string, file: string) => readFile(path.join(dir, file), 'utf8');

  it(
    'writes the PKI with private permissions, reuses it, and regenerates only what is missing',
    async () => {
      const dir = path.join(tmp, 'project', '.keyway', 'pki');
      const first = await ensureDevPki(dir, ['pas', 'pac']);

      expect(Object.keys(first.certs)).toEqual(['pas', 'pac']);
      for (const file of ['ca.crt', 'ca.key', 'pas.crt', 'pas.key', 'pac.crt', 'pac.key']) {
        expect((await stat(path.join(dir, file))).isFile()).toBe(true);
      }
      expect(await read(dir, 'ca.crt')).toBe(first.ca.certPem);
      expect(await read(dir, 'pas.key')).toBe(first.certs.pas?.keyPem);
      if (posix) {
        expect(await mode(dir)).toBe(0o700);
        for (const file of ['ca.key', 'pas.key', 'pac.key']) expect(await mode(path.join(dir, file))).toBe(0o600);
      }

      // second call: everything reused as is
      const second = await ensureDevPki(dir, ['pas', 'pac']);
      expect(second).toEqual(first);

      // one leaf deleted: only that leaf is regenerated, the CA and the other leaf are kept
      await unlink(path.join(dir, 'pac.crt'));
      const third = await ensureDevPki(dir, ['pas', 'pac']);
      expect(third.ca).toEqual(first.ca);
      expect(third.certs.pas).toEqual(first.certs.pas);
      expect(third.certs.pac?.certPem).not.toBe(first.certs.pac?.certPem);
      expect(third.certs.pac?.keyPem).not.toBe(first.certs.pac?.keyPem);
      expect(await read(dir, 'pac.crt')).toBe(third.certs.pac?.certPem);
      const pac = new X509Certificate(third.certs.pac!.certPem);
      expect(pac.verify(new X509Certificate(third.ca.certPem).publicKey)).toBe(true);
      if (posix) expect(await mode(path.join(dir, 'pac.key'))).toBe(0o600);

      // a newly requested name is added without touching the others
      const fourth = await ensureDevPki(dir, ['pas', 'pac', 'sas']);
      expect(fourth.ca).toEqual(first.ca);
      expect(fourth.certs.pac).toEqual(third.certs.pac);
      expect(new X509Certificate(fourth.certs.sas!.certPem).subject).toBe('CN=sas');
    },
    SLOW,
  );

  it(
    'regenerates a leaf past half its lifetime, is signed by another CA, or mismatches its key',
    async () => {
      const dir = path.join(tmp, 'stale');
      const first = await ensureDevPki(dir, ['pas', 'pac', 'sas']);

      // pas: valid for only 5 more hours of 12 (a service certificate as the CA issues it, but older)
      const shortLived = issueCert(first.ca, { commonName: 'pas', uris: ['spiffe://keyway/pas'], hours: 5 });
      await writeFile(path.join(dir, 'pas.crt'), shortLived.certPem);
      await writeFile(path.join(dir, 'pas.key'), shortLived.keyPem);
      // pac: signed by a foreign CA
      const foreign = issueCert(createDevCa(), { commonName: 'pac' });
      await writeFile(path.join(dir, 'pac.crt'), foreign.certPem);
      await writeFile(path.join(dir, 'pac.key'), foreign.keyPem);
      // sas: the key of another certificate
      await writeFile(path.join(dir, 'sas.key'), first.certs.pas!.keyPem);

      const second = await ensureDevPki(dir, ['pas', 'pac', 'sas']);
      expect(second.ca).toEqual(first.ca);
      const caKey = new X509Certificate(first.ca.certPem).publicKey;
      for (const name of ['pas', 'pac', 'sas']) {
        const pairNow = second.certs[name]!;
        expect(pairNow.certPem).not.toBe(first.certs[name]!.certPem);
        const x509 = new X509Certificate(pairNow.certPem);
        expect(x509.verify(caKey)).toBe(true);
        expect(Date.parse(x509.validTo)).toBeGreaterThan(Date.now() + 11.9 * 3_600_000);
        expect(await read(dir, `${name}.crt`)).toBe(pairNow.certPem);
      }
    },
    SLOW,
  );

  it(
    'replacing the CA regenerates every leaf; loosened key permissions are tightened',
    async () => {
      const dir = path.join(tmp, 'new-ca');
      const first = await ensureDevPki(dir, ['pas', 'pac']);
      await unlink(path.join(dir, 'ca.key'));
      const second = await ensureDevPki(dir, ['pas', 'pac']);
      expect(second.ca.certPem).not.toBe(first.ca.certPem);
      const caKey = new X509Certificate(second.ca.certPem).publicKey;
      for (const name of ['pas', 'pac']) {
        expect(second.certs[name]!.certPem).not.toBe(first.certs[name]!.certPem);
        expect(new X509Certificate(second.certs[name]!.certPem).verify(caKey)).toBe(true);
      }

      if (posix) {
        await chmod(path.join(dir, 'pas.key'), 0o644);
        const third = await ensureDevPki(dir, ['pas', 'pac']);
        expect(third).toEqual(second);
        expect(await mode(path.join(dir, 'pas.key'))).toBe(0o600);
      }
    },
    SLOW,
  );

  it(
    'regenerates a service certificate without its SPIFFE ID, of another trust domain, or living longer than leafHours; honours both options',
    async () => {
      const dir = path.join(tmp, 'identity');
      const first = await ensureDevPki(dir, ['pas', 'pac', 'topic']);
      // valid, fresh, right CA and CN, but: no URI SAN / another trust domain / 30 days (the old default)
      const planted = {
        pas: issueCert(first.ca, { commonName: 'pas' }),
        pac: issueCert(first.ca, { commonName: 'pac', uris: ['spiffe://elsewhere/pac'] }),
        topic: issueCert(first.ca, { commonName: 'topic', uris: ['spiffe://keyway/topic'], days: 30 }),
      };
      for (const [name, pairNow] of Object.entries(planted)) {
        await writeFile(path.join(dir, `${name}.crt`), pairNow.certPem);
        await writeFile(path.join(dir, `${name}.key`), pairNow.keyPem);
      }
      const second = await ensureDevPki(dir, ['pas', 'pac', 'topic']);
      for (const name of ['pas', 'pac', 'topic'] as const) {
        expect(second.certs[name]!.certPem).not.toBe(planted[name].certPem);
        expect(new X509Certificate(second.certs[name]!.certPem).subjectAltName).toContain(`URI:spiffe://keyway/${name}`);
      }

      // another trust domain and lifetime: every leaf is reissued to match
      const third = await ensureDevPki(dir, ['pas'], { trustDomain: 'prod.example', leafHours: 2 });
      const pas = new X509Certificate(third.certs.pas!.certPem);
      expect(pas.subjectAltName).toContain('URI:spiffe://prod.example/pas');
      expect((Date.parse(pas.validTo) - Date.parse(pas.validFrom)) / 3_600_000).toBeLessThan(2.1);
      expect(await ensureDevPki(dir, ['pas'], { trustDomain: 'prod.example', leafHours: 2 })).toEqual(third);
      await expect(ensureDevPki(dir, ['pas'], { trustDomain: 'Not A Domain' })).rejects.toThrow(/trust domain/);
    },
    SLOW,
  );

  it(
    'renewDevPki rewrites a certificate past half its lifetime while the process runs',
    async () => {
      const dir = path.join(tmp, 'renew');
      const first = await ensureDevPki(dir, ['pas']);
      const old = issueCert(first.ca, { commonName: 'pas', uris: ['spiffe://keyway/pas'], hours: 1 });
      await writeFile(path.join(dir, 'pas.key'), old.keyPem);
      await writeFile(path.join(dir, 'pas.crt'), old.certPem);
      const errors: unknown[] = [];
      const stop = renewDevPki(dir, ['pas'], { everyMs: 50, onError: (err) => errors.push(err) });
      try {
        await expect.poll(() => read(dir, 'pas.crt'), { timeout: 10_000 }).not.toBe(old.certPem);
      } finally {
        stop();
      }
      const renewed = new X509Certificate(await read(dir, 'pas.crt'));
      expect(renewed.checkPrivateKey(createPrivateKey(await read(dir, 'pas.key')))).toBe(true);
      expect(Date.parse(renewed.validTo)).toBeGreaterThan(Date.now() + 11 * 3_600_000);
      expect(errors).toEqual([]);
    },
    SLOW,
  );

  it('rejects names that are not safe file names or collide with the CA files', async () => {
    const dir = path.join(tmp, 'names');
    await expect(ensureDevPki(dir, ['../evil'])).rejects.toThrow(/invalid certificate name/);
    await expect(ensureDevPki(dir, ['ca'])).rejects.toThrow(/invalid certificate name/);
    await expect(ensureDevPki(dir, [''])).rejects.toThrow(/invalid certificate name/);
  });
});
