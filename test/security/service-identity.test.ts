import { X509Certificate } from 'node:crypto';
import { cp, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttp, entitlementClient, FORM, pacClient, pasClient, topicClient } from '@keyway/clients';
import { openTls } from '@keyway/kit';
import { PKI_NAMES, startSuite, testPkiDir, type Suite } from '@keyway/testkit';
import { createDevCa, issueCert, issueServiceCert, type CertPair, type DevCa } from '@keyway/tls';
import { presented } from '../deploy/processes.ts';
import { makeBatch, PASSWORD, provisionTenant } from '../helpers.ts';

/**
 * Issue 14, service identity: a service is the SPIFFE ID in its certificate (spiffe://keyway/<service>),
 * its certificate lives hours and is renewed in place, and every service follows its files without a
 * restart (TLS_RELOAD_SEC, 1 s here). Each suite runs on its own copy of the run's PKI, since these
 * tests rewrite it.
 */
const RELOAD_SEC = 1;
const RELOADED_MS = 10_000;

async function ownPki(): Promise<{ dir: string; ca: DevCa }> {
  const dir = await mkdtemp(join(tmpdir(), 'keyway-identity-pki-'));
  await cp(testPkiDir(), dir, { recursive: true });
  return { dir, ca: { certPem: await readFile(join(dir, 'ca.crt'), 'utf8'), keyPem: await readFile(join(dir, 'ca.key'), 'utf8') } };
}

/** as ensureDevPki and cert-manager write them: each file replaced by rename, key first */
async function replace(file: string, data: string): Promise<void> {
  await writeFile(`${file}.new`, data, { mode: 0o600 });
  await rename(`${file}.new`, file);
}
async function install(dir: string, name: string, pair: CertPair): Promise<void> {
  await replace(join(dir, `${name}.key`), pair.keyPem);
  await replace(join(dir, `${name}.crt`), pair.certPem);
}

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;
/** Node prints the peer's serial in upper-case hex, X509Certificate too; compare them the same way */
const sameSerial = (a: string, b: string) => a.toUpperCase() === b.toUpperCase();

/** An internal API and one caller it names: PAS's introspection, which PAC may call (the mTLS matrix). */
const introspectAs = (suite: Suite, caller: CertPair | undefined) =>
  createHttp({ baseUrl: suite.urls.pas, caPem: suite.pki.ca.certPem, clientCert: caller }).post('/oauth2/introspect', 'token=not-a-token&token_type_hint=access_token', { headers: FORM });

describe('service certificates: identity from the SPIFFE ID, renewed without a restart', () => {
  let suite: Suite;
  let pki: { dir: string; ca: DevCa };
  beforeAll(async () => {
    pki = await ownPki();
    suite = await startSuite({ pkiDir: pki.dir, tlsReloadSec: RELOAD_SEC });
  });
  afterAll(async () => {
    await suite?.close();
    if (pki) await rm(pki.dir, { recursive: true, force: true });
  });

  it('a running service presents its renewed certificate on the next connection, and keeps answering', async () => {
    const before = await presented(suite.urls.pas, pki.ca.certPem);
    expect(sameSerial(before.serialNumber, serialOf(suite.pki.certs.pas!.certPem))).toBe(true);
    expect(before.subjectaltname).toContain('URI:spiffe://keyway/pas');
    // hours, not days (notBefore is backdated a minute)
    expect(Date.parse(before.valid_to) - Date.parse(before.valid_from)).toBeLessThanOrEqual(12 * 3_600_000 + 60_000);

    const renewed = issueServiceCert(pki.ca, 'pas');
    await install(pki.dir, 'pas', renewed);
    await expect.poll(async () => (await presented(suite.urls.pas, pki.ca.certPem)).serialNumber, { timeout: RELOADED_MS }).toBe(serialOf(renewed.certPem).toUpperCase());
    const after = await presented(suite.urls.pas, pki.ca.certPem);
    expect(Date.parse(after.valid_to)).toBeGreaterThan(Date.parse(before.valid_to));

    // the same process, still serving: a login goes through PAS (which calls the IdP and the entitlement service over mTLS)
    const { email } = await provisionTenant(suite);
    expect((await suite.pas.password(email, PASSWORD)).access_token).toBeTruthy();
  });

  it('an outgoing client built as the services build theirs presents the renewed certificate (the server sees its serial)', async () => {
    // a server that trusts our CA and answers with the serial of the client certificate it saw
    const seen = https.createServer(
      { ...suite.pki.certs.pac!, cert: suite.pki.certs.pac!.certPem, key: suite.pki.certs.pac!.keyPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: false },
      (req, res) => {
        const socket = req.socket as TLSSocket;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ authorized: socket.authorized, serial: socket.getPeerCertificate().serialNumber ?? null }));
      },
    );
    await new Promise<void>((resolve) => seen.listen(0, '127.0.0.1', resolve));
    const tls = openTls({
      TLS_CERT_FILE: join(pki.dir, 'topic.crt'),
      TLS_KEY_FILE: join(pki.dir, 'topic.key'),
      TLS_CA_FILE: join(pki.dir, 'ca.crt'),
      TRUST_DOMAIN: 'keyway',
      TLS_RELOAD_SEC: RELOAD_SEC,
    });
    try {
      const client = createHttp({ baseUrl: `https://localhost:${(seen.address() as AddressInfo).port}`, tls });
      const first = await client.get('/');
      expect(first.data).toEqual({ authorized: true, serial: serialOf(suite.pki.certs.topic!.certPem).toUpperCase() });
      // the same keep-alive pool again, before the renewal
      expect((await client.get('/')).data.serial).toBe(first.data.serial);

      const renewed = issueServiceCert(pki.ca, 'topic');
      await install(pki.dir, 'topic', renewed);
      await expect.poll(async () => (await client.get('/')).data, { timeout: RELOADED_MS }).toEqual({ authorized: true, serial: serialOf(renewed.certPem).toUpperCase() });
    } finally {
      tls.close();
      seen.closeAllConnections();
      await new Promise((resolve) => seen.close(resolve));
    }
  });

  it('a certificate from our CA is nobody without its SPIFFE ID, with another trust domain, or expired: 401 invalid_client', async () => {
    // control: the PAC certificate as the CA issues it passes (its input is what is judged)
    expect((await introspectAs(suite, issueServiceCert(pki.ca, 'pac'))).status).toBe(200);

    const refused = {
      'CN pac, no URI SAN': issueCert(pki.ca, { commonName: 'pac' }),
      'another trust domain': issueCert(pki.ca, { commonName: 'pac', uris: ['spiffe://elsewhere/pac'] }),
      'a path under the service': issueCert(pki.ca, { commonName: 'pac', uris: ['spiffe://keyway/pac/extra'] }),
      'two SPIFFE IDs': issueCert(pki.ca, { commonName: 'pac', uris: ['spiffe://keyway/pac', 'spiffe://keyway/topic'] }),
      expired: issueCert(pki.ca, { commonName: 'pac', uris: ['spiffe://keyway/pac'], hours: 0.5 / 3600 }),
    };
    await sleep(1500); // past the expired one's notAfter
    for (const [what, cert] of Object.entries(refused)) {
      const response = await introspectAs(suite, cert);
      expect(response.status, what).toBe(401);
      expect(response.data, what).toEqual({ error: 'invalid_client', error_description: expect.any(String) });
    }

    // a kept-alive connection does not outlive its certificate: the same connection is nobody once it expires
    const shortLived = createHttp({ baseUrl: suite.urls.pas, caPem: suite.pki.ca.certPem, clientCert: issueCert(pki.ca, { commonName: 'pac', uris: ['spiffe://keyway/pac'], hours: 2 / 3600 }) });
    const sockets: unknown[] = [];
    const introspect = async () => {
      const response = await shortLived.post('/oauth2/introspect', 'token=not-a-token', { headers: FORM });
      sockets.push(response.request.socket);
      return response;
    };
    expect((await introspect()).status).toBe(200);
    await sleep(2500);
    const late = await introspect();
    expect(sockets[1]).toBe(sockets[0]);
    expect(late.status).toBe(401);

    // the operator certificate likewise: CN "operator" alone is no operator at the admin API
    const admin = (cert: CertPair) => createHttp({ baseUrl: suite.urls.entitlement, caPem: suite.pki.ca.certPem, clientCert: cert }).get('/v1/tenants');
    expect((await admin(issueServiceCert(pki.ca, 'operator'))).status).toBe(200);
    const cnOnly = await admin(issueCert(pki.ca, { commonName: 'operator' }));
    expect(cnOnly.status).toBe(401);
    expect(cnOnly.data).toEqual({ error: 'invalid_client', error_description: expect.any(String) });
    // a real service's SPIFFE ID in a certificate whose CN says operator is that service: 403
    const mislabelled = await admin(issueCert(pki.ca, { commonName: 'operator', uris: ['spiffe://keyway/pac'] }));
    expect(mislabelled.status).toBe(403);
    expect(mislabelled.data).toMatchObject({ error: 'access_denied' });
  });
});

describe('a CA rotation with an overlap, while every service keeps running', () => {
  let suite: Suite;
  let pki: { dir: string; ca: DevCa };
  beforeAll(async () => {
    pki = await ownPki();
    suite = await startSuite({ pkiDir: pki.dir, tlsReloadSec: RELOAD_SEC });
  });
  afterAll(async () => {
    await suite?.close();
    if (pki) await rm(pki.dir, { recursive: true, force: true });
  });

  it('old and new CA trusted together, every certificate reissued, then the old CA dropped: the chain works on the new CA only', async () => {
    const services = Object.keys(suite.urls) as Array<keyof Suite['urls']>;
    const next = createDevCa();
    const caFile = join(pki.dir, 'ca.crt');
    // 1. the bundle trusts both CAs
    await replace(caFile, `${pki.ca.certPem}${next.certPem}`);
    await sleep(3 * RELOAD_SEC * 1000);
    // 2. every certificate reissued under the new CA; each service presents its new one
    for (const name of PKI_NAMES) await install(pki.dir, name, issueServiceCert(next, name));
    for (const name of services) {
      await expect
        .poll(async () => new X509Certificate((await presented(suite.urls[name], next.certPem)).raw).verify(new X509Certificate(next.certPem).publicKey), { timeout: RELOADED_MS })
        .toBe(true);
    }
    // 3. the old CA dropped
    await replace(caFile, next.certPem);
    await sleep(3 * RELOAD_SEC * 1000);

    // the services call each other with their new certificates: provisioning (entitlement → IdP, topic),
    // login (PAS → IdP, entitlement), SAS key (PAC → PAS, entitlement), publish and receive (topic → PAC)
    const operatorCert = await readFile(join(pki.dir, 'operator.crt'), 'utf8');
    const operatorKey = await readFile(join(pki.dir, 'operator.key'), 'utf8');
    const asClient = { caPem: next.certPem };
    const operator = entitlementClient({ ...asClient, clientCert: { certPem: operatorCert, keyPem: operatorKey }, baseUrl: suite.urls.entitlement });
    const { tenant, feed, email } = await provisionTenant({ operator });
    const tokens = await pasClient({ ...asClient, baseUrl: suite.urls.pas }).password(email, PASSWORD);
    const { sas_key } = await pacClient({ ...asClient, baseUrl: suite.urls.pac }).sas({ refresh_token: tokens.refresh_token, rights: 'listen-send' });
    const topic = topicClient({ ...asClient, baseUrl: suite.urls.topic });
    const batch = makeBatch(tenant, feed, 1);
    await topic.publish(sas_key, batch);
    expect((await topic.receive(sas_key, tenant, feed, 'default', 5))?.batch.id).toBe(batch.id);

    // a certificate of the old CA is nobody now, even one naming the operator
    const old = await createHttp({ baseUrl: suite.urls.entitlement, caPem: next.certPem, clientCert: suite.pki.certs.operator }).get('/v1/tenants');
    expect(old.status).toBe(401);
    expect(old.data).toMatchObject({ error: 'invalid_client' });
  });
});
