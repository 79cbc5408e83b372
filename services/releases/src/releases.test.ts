import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuthorizeDecision, ReleaseRights } from '@keyway/contracts';
import { silentLogger } from '@keyway/kit';
import { createScanner } from '@keyway/scan';
import { createPgStore, createStore, type Store } from '@keyway/store';
import { connectTestDatabase, REDIS_URL, type TestDatabaseConnections } from '@keyway/testkit';
import { EICAR, startClamdServer, type ClamdServer } from '@keyway/testkit/servers';
import { issueAccessToken, KeyRing } from '@keyway/tokens';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type ReleasesApp } from './app.ts';
import type { ReleaseAuthorizer } from './auth/authorizer.ts';
import { storageLayout } from './storage/layout.ts';

/*
 * The releases service on real PostgreSQL (records and its audit stream), Redis and clamd, with
 * access tokens signed here and a ReleaseAuthorizer standing in for the entitlement service (its
 * answers change between clicks as a contract would). The cross-service test through startSuite,
 * with the real entitlement service, comes with helper A's merge (issue 13).
 */

const PUBLIC_URL = 'https://releases.test';
const ISSUER = 'https://pas.test';
const MiB = 1024 * 1024;
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const b64 = (text: string) => Buffer.from(text).toString('base64');

const all = (versions = '*'): ReleaseRights[string] => ({ rights: ['upload', 'publish', 'withdraw', 'download'], versions });
const people = {
  publisher: { sub: 'pub-1', tid: 'vendor', roles: ['publisher'] },
  customer: { sub: 'cust-1', tid: 'acme', roles: ['downloader'] },
  partner: { sub: 'part-1', tid: 'partner-one', roles: ['uploader'] },
  otherPartner: { sub: 'part-2', tid: 'partner-two', roles: ['uploader'] },
} as const;
type Person = keyof typeof people;
const decisions = new Map<string, AuthorizeDecision>();
const grant = (person: Person, releases: ReleaseRights) => decisions.set(people[person].sub, { allow: true, feeds: [], rights: {}, roles: [...people[person].roles], releases });
const authorizer: ReleaseAuthorizer & { asked: number } = {
  asked: 0,
  async decide({ sub }) {
    this.asked += 1;
    return decisions.get(sub) ?? { allow: false, reason: 'user_unknown' };
  },
};

let database: TestDatabaseConnections;
let clamd: ClamdServer;
let storage: string;
let store: Store;
let app: ReleasesApp;
let server: Server;
let base: string;
let ring: KeyRing;
/** the scanner the app talks to: clamd, or an address where nothing listens (clamd down) */
const scanners = { live: undefined as unknown as ReturnType<typeof createScanner>, down: createScanner({ address: 'tcp://127.0.0.1:9', commandTimeoutMs: 500 }), useLive: true };
const current = () => (scanners.useLive ? scanners.live : scanners.down);

beforeAll(async () => {
  [database, clamd] = await Promise.all([connectTestDatabase(), startClamdServer()]);
  scanners.live = createScanner({ address: clamd.address, maxStreamBytes: 64 * MiB });
  storage = await mkdtemp(join(tmpdir(), 'keyway-releases-'));
  ring = await KeyRing.generate();
  store = await createStore({ redisUrl: REDIS_URL, prefix: `keyway-test:${randomBytes(6).toString('hex')}:releases:` });
  ({ app, server, base } = await startApp({}));
  grant('publisher', { edr: all(), 'edr-agent': all() });
  grant('customer', { edr: { rights: ['download'], versions: '^2.0.0' } });
  grant('partner', { edr: { rights: ['upload'], versions: '' } });
  grant('otherPartner', { edr: { rights: ['upload'], versions: '' } });
}, 120_000);

/** The service on a plain HTTP listener (TLS is the listener's business, not the app's), over this file's database, Redis, storage and scanner. */
async function startApp(overrides: Partial<Parameters<typeof createApp>[0]>) {
  const records = createPgStore({ db: database.as('releases'), schema: 'keyway_releases', prefix: 'keyway:releases:' });
  const started = createApp(
    { publicUrl: PUBLIC_URL, pasIssuer: ISSUER, clockToleranceSec: 5, maxFileBytes: 4 * 1024 * MiB, scannableBytes: 64 * MiB, scanRetryMs: 200, uploadExpiryMs: 3_600_000, ...overrides },
    {
      records,
      store,
      auditDb: database.as('releases'),
      layout: await storageLayout(storage),
      scanner: { scan: (source) => current().scan(source), ping: () => current().ping(), version: () => current().version() },
      authorizer,
      pasKeys: ring.localKeySet(),
      introspect: async () => ({ active: true }),
      logger: silentLogger,
    },
  );
  const listener = createServer(started);
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  return { app: started, server: listener, base: `http://127.0.0.1:${(listener.address() as AddressInfo).port}` };
}

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await app?.close();
  if (store) {
    const keys = await store.keys('');
    if (keys.length > 0) await store.del(...keys);
    await store.close();
  }
  await clamd?.stop();
  await database?.close();
  if (storage) await rm(storage, { recursive: true, force: true });
});

const settings = { issuer: ISSUER, accessAudience: PUBLIC_URL, refreshAudience: ISSUER, accessTtlSec: 600, refreshTtlSec: 600, clockToleranceSec: 5 };
/** `claim`: the token's `releases` claim (PAS writes what the entitlement service granted at issuance) */
async function tokenOf(person: Person | 'operator', claim?: ReleaseRights): Promise<string> {
  const subject = person === 'operator' ? { sub: 'op-1', tid: 'vendor', roles: ['operator'], scope: 'operator' } : { ...people[person], roles: [...people[person].roles], scope: 'releases' };
  const claims = { ...subject, client_id: 'keyway-releases', ...(claim ? { releases: claim } : {}) };
  return (await issueAccessToken(ring.signer(), settings, claims, PUBLIC_URL)).token;
}

async function call(person: Person | 'operator' | undefined, path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const headers = { ...(person ? { authorization: `Bearer ${await tokenOf(person)}` } : {}), ...init.headers };
  return fetch(`${base}${path}`, { ...init, headers });
}

const TUS = { 'tus-resumable': '1.0.0' };
const metadata = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([key, value]) => `${key} ${b64(value)}`)
    .join(',');

async function createUpload(person: Person, fields: Record<string, string>, length: number) {
  return call(person, '/v1/uploads', { method: 'POST', headers: { ...TUS, 'upload-length': String(length), 'upload-metadata': metadata(fields) } });
}
async function patch(person: Person, location: string, offset: number, body: Buffer) {
  return call(person, location, { method: 'PATCH', headers: { ...TUS, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' }, body });
}
/** creates and sends the whole file in one PATCH; answers the final PATCH */
async function upload(person: Person, fields: Record<string, string>, bytes: Buffer) {
  const created = await createUpload(person, { sha256: sha(bytes), ...fields }, bytes.length);
  expect(created.status).toBe(201);
  return patch(person, created.headers.get('location')!, 0, bytes);
}

async function fileState(person: Person, product: string, version: string, name: string): Promise<{ state: string; reason?: string } | undefined> {
  const res = await call(person, `/v1/products/${product}/versions/${version}`);
  if (res.status !== 200) return undefined;
  return ((await res.json()) as { files: { name: string; state: string; reason?: string }[] }).files.find((f) => f.name === name);
}
async function until<T>(probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  for (const deadline = Date.now() + ms; ; await sleep(50)) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
  }
}
const stateBecomes = (person: Person, product: string, version: string, name: string, state: string) =>
  until(async () => {
    const file = await fileState(person, product, version, name);
    return file?.state === state ? file : undefined;
  });

async function auditActions(
  action: string,
): Promise<{ action: string; outcome: string; tenant: string | null; subject: string | null; reason: string | null; detail: Record<string, string> | null }[]> {
  return database.admin.query(
    `SELECT action, outcome, tenant, subject, event::jsonb->>'reason' AS reason, event::jsonb->'detail' AS detail FROM keyway_audit.events WHERE stream = 'releases' AND action = $1 ORDER BY seq`,
    [action],
  );
}

/** A published version 2.1.0 of edr with one clean file, uploaded through a PATCH cut at half and resumed. */
const payload = randomBytes(3 * MiB + 123);
let published = false;

describe('uploads (tus 1.0)', () => {
  it('an upload cut at half resumes from the offset HEAD reports, and the file is checked, scanned clean and publishable', async () => {
    const created = await createUpload('publisher', { product: 'edr', version: '2.1.0', filename: 'edr-2.1.0.tar.gz', sha256: sha(payload) }, payload.length);
    expect(created.status).toBe(201);
    const location = created.headers.get('location')!;
    expect(location).toMatch(/^\/v1\/uploads\/[0-9a-f]{32}$/);

    // the connection drops after the first half has gone out
    const half = Math.floor(payload.length / 2);
    await new Promise<void>((resolve) => {
      const token = tokenOf('publisher');
      void token.then((t) => {
        const req = httpRequest(`${base}${location}`, {
          method: 'PATCH',
          headers: { ...TUS, authorization: `Bearer ${t}`, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream', 'content-length': String(payload.length) },
        });
        req.on('error', () => resolve());
        req.write(payload.subarray(0, half), () => setTimeout(() => req.destroy(), 300));
      });
    });
    const offset = await until(async () => {
      const head = await call('publisher', location, { method: 'HEAD', headers: TUS });
      const at = Number(head.headers.get('upload-offset'));
      return head.status === 200 && at > 0 ? at : undefined;
    });
    expect(offset).toBeLessThanOrEqual(half);
    const rest = await until(async () => {
      const res = await patch('publisher', location, offset, payload.subarray(offset));
      // the cut request may still hold the upload's lock for a moment
      return res.status === 423 || res.status === 409 ? undefined : res;
    });
    expect(rest.status).toBe(204);
    expect(rest.headers.get('upload-offset')).toBe(String(payload.length));

    const file = await stateBecomes('publisher', 'edr', '2.1.0', 'edr-2.1.0.tar.gz', 'clean');
    expect(file).toMatchObject({ sha256: sha(payload), size: payload.length });
    const publish = await call('publisher', '/v1/products/edr/versions/2.1.0/publish', { method: 'POST' });
    expect(publish.status).toBe(200);
    expect(await publish.json()).toMatchObject({ state: 'published', files: [{ name: 'edr-2.1.0.tar.gz', state: 'clean' }] });
    published = true;
    expect((await auditActions('release.uploaded')).at(-1)).toMatchObject({ outcome: 'success', subject: 'pub-1', tenant: 'vendor', detail: { sha256: sha(payload), bytes: String(payload.length) } });
    expect((await auditActions('release.published')).at(-1)).toMatchObject({ outcome: 'success', subject: 'pub-1' });
    // the upload is over: its id is gone
    expect((await call('publisher', location, { method: 'HEAD', headers: TUS })).status).toBe(404);
  });

  it('a file whose bytes do not match the stated SHA-256 is refused (460), never recorded, and audited', async () => {
    const bytes = randomBytes(4096);
    const created = await createUpload('publisher', { product: 'edr', version: '2.2.0', filename: 'bad.bin', sha256: sha(Buffer.from('something else')) }, bytes.length);
    const res = await patch('publisher', created.headers.get('location')!, 0, bytes);
    expect(res.status).toBe(460);
    expect(JSON.parse(await res.text())).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining(sha(bytes)) });
    expect(await fileState('publisher', 'edr', '2.2.0', 'bad.bin')).toBeUndefined();
    expect((await auditActions('release.hash_mismatch')).at(-1)).toMatchObject({ outcome: 'denied', subject: 'pub-1', detail: { received: sha(bytes), file: 'bad.bin' } });
    // nothing is left on disk for it
    expect(readdirSync(join(storage, 'uploads')).filter((name) => !name.startsWith('.'))).toEqual([]);
  });

  it('EICAR is refused: infected, quarantined, never publishable nor downloadable, audited', async () => {
    expect((await upload('publisher', { product: 'edr', version: '2.3.0', filename: 'eicar.com' }, EICAR)).status).toBe(204);
    const file = await stateBecomes('publisher', 'edr', '2.3.0', 'eicar.com', 'infected');
    expect(file.reason).toContain(clamd.eicarSignature);
    expect(readdirSync(join(storage, 'quarantine')).some((name) => name.startsWith(sha(EICAR)))).toBe(true);
    expect(existsSync(join(storage, 'sha256', sha(EICAR).slice(0, 2), sha(EICAR)))).toBe(false);
    const publish = await call('publisher', '/v1/products/edr/versions/2.3.0/publish', { method: 'POST' });
    expect(publish.status).toBe(409);
    expect(await publish.json()).toMatchObject({ error: 'conflict', error_description: expect.stringContaining('eicar.com (infected)') });
    const download = await call('publisher', '/products/edr/2.3.0/eicar.com');
    expect(download.status).toBe(403);
    expect((await auditActions('release.scan_infected')).at(-1)).toMatchObject({ outcome: 'denied', detail: { signature: clamd.eicarSignature, quarantined: 'true', file: 'eicar.com' } });
  });

  it('with the scanner down a file waits as scan_pending (not publishable), and is scanned clean once clamd is back', async () => {
    scanners.useLive = false;
    try {
      const bytes = randomBytes(10_000);
      expect((await upload('publisher', { product: 'edr', version: '2.4.0', filename: 'agent.msi' }, bytes)).status).toBe(204);
      await stateBecomes('publisher', 'edr', '2.4.0', 'agent.msi', 'scan_pending');
      expect((await call('publisher', '/v1/products/edr/versions/2.4.0/publish', { method: 'POST' })).status).toBe(409);
      expect((await auditActions('release.scan_pending')).at(-1)).toMatchObject({ outcome: 'failure', reason: 'ERR_SCANNER_UNREACHABLE' });
    } finally {
      scanners.useLive = true;
    }
    await stateBecomes('publisher', 'edr', '2.4.0', 'agent.msi', 'clean');
    expect((await call('publisher', '/v1/products/edr/versions/2.4.0/publish', { method: 'POST' })).status).toBe(200);
  });

  it('an uploader uploads to its tenant’s location, which another tenant cannot see; an uploader cannot publish nor upload into a version', async () => {
    const bytes = Buffer.from('partner build log\n');
    expect((await upload('partner', { product: 'edr', filename: 'partner-report.txt' }, bytes)).status).toBe(204);
    const own = await until(async () => {
      const res = await call('partner', '/v1/products/edr/locations/partner-one');
      const body = (await res.json()) as { files: { name: string; state: string }[] };
      return body.files[0]?.state === 'clean' ? body : undefined;
    });
    expect(own).toMatchObject({ tenant: 'partner-one', files: [{ name: 'partner-report.txt', sha256: sha(bytes), state: 'clean' }] });
    expect((await call('otherPartner', '/v1/products/edr/locations/partner-one')).status).toBe(404);
    expect(await (await call('otherPartner', '/v1/products/edr/locations/partner-two')).json()).toMatchObject({ files: [] });
    // the vendor's publishers collect what partners sent
    expect((await (await call('publisher', '/v1/products/edr/locations/partner-one')).json()) as object).toMatchObject({ files: [{ name: 'partner-report.txt' }] });

    const publish = await call('partner', '/v1/products/edr/versions/2.4.0/publish', { method: 'POST' });
    expect(publish.status).toBe(403);
    expect(await publish.json()).toMatchObject({ error: 'access_denied' });
    const intoVersion = await createUpload('partner', { product: 'edr', version: '2.5.0', filename: 'x.bin', sha256: sha(bytes) }, bytes.length);
    expect(intoVersion.status).toBe(403);
    expect((await auditActions('authorization.denied')).some((e) => e.subject === 'part-1' && e.reason === 'right_missing')).toBe(true);
  });

  it('an upload into a draft that is published before the upload ends is refused at its end (409), the version unchanged', async () => {
    const first = randomBytes(500);
    expect((await upload('publisher', { product: 'edr-agent', version: '1.0.0', filename: 'a.bin' }, first)).status).toBe(204);
    const second = randomBytes(700);
    const late = await createUpload('publisher', { product: 'edr-agent', version: '1.0.0', filename: 'b.bin', sha256: sha(second) }, second.length);
    await stateBecomes('publisher', 'edr-agent', '1.0.0', 'a.bin', 'clean');
    expect((await call('publisher', '/v1/products/edr-agent/versions/1.0.0/publish', { method: 'POST' })).status).toBe(200);
    const refused = await patch('publisher', late.headers.get('location')!, 0, second);
    expect(refused.status).toBe(409);
    expect(JSON.parse(await refused.text())).toMatchObject({ error: 'conflict' });
    expect(await fileState('publisher', 'edr-agent', '1.0.0', 'b.bin')).toBeUndefined();
    // and no new upload into it starts
    expect((await createUpload('publisher', { product: 'edr-agent', version: '1.0.0', filename: 'c.bin', sha256: sha(second) }, second.length)).status).toBe(409);
  });

  it('refuses at creation a file of 2 GiB or more, which ClamAV never judges, even when clamd.conf allows more (413)', async () => {
    const generous = await startApp({ scannableBytes: 4000 * MiB });
    try {
      const token = await tokenOf('partner');
      const announce = (length: number) =>
        fetch(`${generous.base}/v1/uploads`, {
          method: 'POST',
          headers: { ...TUS, authorization: `Bearer ${token}`, 'upload-length': String(length), 'upload-metadata': metadata({ product: 'edr', filename: 'big.iso', sha256: 'a'.repeat(64) }) },
        });
      const refused = await announce(2 * 1024 * MiB);
      expect(refused.status).toBe(413);
      expect(await refused.json()).toMatchObject({ error_description: `the scanner judges files of at most ${2 * 1024 * MiB - 1} bytes; a larger one could never be published` });
      const accepted = await announce(2 * 1024 * MiB - 1);
      expect(accepted.status).toBe(201);
      await fetch(`${generous.base}${new URL(accepted.headers.get('location')!, generous.base).pathname}`, { method: 'DELETE', headers: { ...TUS, authorization: `Bearer ${token}` } });
    } finally {
      await new Promise((resolve) => generous.server.close(resolve));
      await generous.app.close();
    }
  });

  it('an upload left unfinished past RELEASES_UPLOAD_EXPIRY_SEC is deleted, bytes and record', async () => {
    const short = await startApp({ uploadExpiryMs: 400 });
    try {
      const bytes = randomBytes(2000);
      const created = await fetch(`${short.base}/v1/uploads`, {
        method: 'POST',
        headers: {
          ...TUS,
          authorization: `Bearer ${await tokenOf('partner')}`,
          'upload-length': String(bytes.length),
          'upload-metadata': metadata({ product: 'edr', filename: 'left.bin', sha256: sha(bytes) }),
        },
      });
      const id = created.headers.get('location')!.split('/').pop()!;
      expect(existsSync(join(storage, 'uploads', id))).toBe(true);
      await until(async () => (existsSync(join(storage, 'uploads', id)) ? undefined : true), 5000);
      expect((await call('partner', `/v1/uploads/${id}`, { method: 'HEAD', headers: TUS })).status).toBe(404);
    } finally {
      await new Promise((resolve) => short.server.close(resolve));
      await short.app.close();
    }
  });

  it('the upload belongs to its creator: another user gets 404 at HEAD and PATCH', async () => {
    const bytes = randomBytes(1000);
    const created = await createUpload('partner', { product: 'edr', filename: 'mine.bin', sha256: sha(bytes) }, bytes.length);
    const location = created.headers.get('location')!;
    expect((await call('otherPartner', location, { method: 'HEAD', headers: TUS })).status).toBe(404);
    expect((await patch('otherPartner', location, 0, bytes)).status).toBe(404);
    expect((await patch('partner', location, 0, bytes)).status).toBe(204);
  });
});

describe('downloads', () => {
  const link = '/products/edr/2.1.0/edr-2.1.0.tar.gz';
  const etag = () => `"${sha(payload)}"`;

  it('the whole file, with a strong ETag (its SHA-256), Accept-Ranges, Content-Disposition and Content-Length', async () => {
    expect(published).toBe(true);
    const res = await call('customer', link);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(etag());
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="edr-2.1.0.tar.gz"');
    expect(res.headers.get('content-length')).toBe(String(payload.length));
    expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(sha(payload));
  });

  it('Range (206, Content-Range), suffix ranges, If-Range (match: the range; else the whole file), If-None-Match (304), unsatisfiable (416)', async () => {
    const part = await call('customer', link, { headers: { range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${payload.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(payload.subarray(100, 200))).toBe(true);
    const suffix = await call('customer', link, { headers: { range: 'bytes=-10' } });
    expect(suffix.status).toBe(206);
    expect(Buffer.from(await suffix.arrayBuffer()).equals(payload.subarray(payload.length - 10))).toBe(true);

    const matching = await call('customer', link, { headers: { range: 'bytes=0-9', 'if-range': etag() } });
    expect(matching.status).toBe(206);
    await matching.arrayBuffer();
    const stale = await call('customer', link, { headers: { range: 'bytes=0-9', 'if-range': `"${'0'.repeat(64)}"` } });
    expect(stale.status).toBe(200);
    expect((await stale.arrayBuffer()).byteLength).toBe(payload.length);

    const cached = await call('customer', link, { headers: { 'if-none-match': etag() } });
    expect(cached.status).toBe(304);
    const outside = await call('customer', link, { headers: { range: `bytes=${payload.length}-` } });
    expect(outside.status).toBe(416);
    expect(outside.headers.get('content-range')).toBe(`bytes */${payload.length}`);
  });

  it('a download cut at half resumes with Range and If-Range, and the SHA-256 of the pieces matches', async () => {
    const token = await tokenOf('customer');
    const first = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let got = 0;
      const req = httpRequest(`${base}${link}`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          got += chunk.length;
          if (got >= payload.length / 2) {
            req.destroy();
            resolve(Buffer.concat(chunks));
          }
        });
      });
      req.on('error', (err) => (got >= payload.length / 2 ? undefined : reject(err)));
      req.end();
    });
    expect(first.length).toBeLessThan(payload.length);
    const rest = await call('customer', link, { headers: { range: `bytes=${first.length}-`, 'if-range': etag() } });
    expect(rest.status).toBe(206);
    expect(sha(Buffer.concat([first, Buffer.from(await rest.arrayBuffer())]))).toBe(sha(payload));
  });

  it('authorization at every click: a token that still says download, but the entitlement service now denies, gets 403', async () => {
    const token = await tokenOf('customer');
    const open = () => fetch(`${base}${link}`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
    expect((await open()).status).toBe(200);
    const before = decisions.get(people.customer.sub)!;
    try {
      // the tier lost the product
      grant('customer', {});
      const refused = await fetch(`${base}${link}`, { headers: { authorization: `Bearer ${token}` } });
      expect(refused.status).toBe(403);
      expect(await refused.json()).toMatchObject({ error: 'access_denied' });
      decisions.set(people.customer.sub, { allow: false, reason: 'tenant_suspended' });
      expect((await open()).status).toBe(403);
    } finally {
      decisions.set(people.customer.sub, before);
    }
    expect((await auditActions('authorization.denied')).some((e) => e.subject === 'cust-1' && e.reason === 'tenant_suspended')).toBe(true);
  });

  it('the token’s releases claim is a first filter: it narrows what the entitlement service grants, and a refusal by it does not ask', async () => {
    const narrow = await tokenOf('customer', { edr: { rights: ['download'], versions: '~2.1.0' } });
    const open = (token: string, path = link) => fetch(`${base}${path}`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
    expect((await open(narrow)).status).toBe(200);
    // granted now by the entitlement service (^2.0.0), but outside what the token was issued for
    expect((await open(narrow, '/products/edr/2.4.0/agent.msi')).status).toBe(403);
    const other = await tokenOf('customer', { 'edr-agent': { rights: ['download'], versions: '*' } });
    const asked = authorizer.asked;
    const refused = await fetch(`${base}${link}`, { headers: { authorization: `Bearer ${other}` } });
    expect(refused.status).toBe(403);
    expect(authorizer.asked).toBe(asked);
    expect((await auditActions('authorization.denied')).at(-1)).toMatchObject({ subject: 'cust-1', reason: 'token_claim' });
  });

  it('versions outside the contract’s range, drafts and withdrawn versions are not downloadable; downloaders see only what they may fetch', async () => {
    expect(await (await call('customer', '/v1/products/edr')).json()).toMatchObject({ product: 'edr', rights: ['download'], versions: [{ version: '2.1.0' }, { version: '2.4.0' }] });
    expect((await call('customer', '/v1/products/edr/versions/2.3.0')).status).toBe(404);
    const publisherView = (await (await call('publisher', '/v1/products/edr')).json()) as { versions: { version: string; state: string }[] };
    expect(publisherView.versions.map((v) => `${v.version}:${v.state}`)).toEqual(expect.arrayContaining(['2.2.0:draft', '2.3.0:draft', '2.1.0:published']));

    // a 3.x release is outside the customer's ^2.0.0
    expect((await upload('publisher', { product: 'edr', version: '3.0.0', filename: 'edr-3.tar.gz' }, Buffer.from('three'))).status).toBe(204);
    await stateBecomes('publisher', 'edr', '3.0.0', 'edr-3.tar.gz', 'clean');
    expect((await call('publisher', '/v1/products/edr/versions/3.0.0/publish', { method: 'POST' })).status).toBe(200);
    const outside = await call('customer', '/products/edr/3.0.0/edr-3.tar.gz');
    expect(outside.status).toBe(403);
    expect(await outside.json()).toMatchObject({ error: 'access_denied', error_description: expect.stringContaining('3.0.0') });

    expect((await call('publisher', '/v1/products/edr/versions/2.4.0/withdraw', { method: 'POST' })).status).toBe(200);
    expect((await call('publisher', '/v1/products/edr/versions/2.4.0/withdraw', { method: 'POST' })).status).toBe(409);
    expect((await call('customer', '/products/edr/2.4.0/agent.msi')).status).toBe(403);
    expect((await call('customer', '/products/edr/2.1.0/no-such-file')).status).toBe(404);
  });

  it('the landing pages list what the person may fetch, escaped, under a CSP', async () => {
    const landing = await call('customer', '/');
    expect(landing.status).toBe(200);
    expect(landing.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await landing.text();
    expect(html).toContain('<a href="/products/edr">edr</a>');
    const product = await (await call('customer', '/products/edr')).text();
    expect(product).toContain('<a href="/products/edr/2.1.0/edr-2.1.0.tar.gz" download>');
    expect(product).not.toContain('2.3.0');
    expect((await call(undefined, '/')).status).toBe(401);
  });

  it('the download report for a tenant lists who fetched which file, the bytes and the range (operator only)', async () => {
    const res = await call('operator', '/v1/reports/downloads?tenant=acme');
    expect(res.status).toBe(200);
    const report = (await res.json()) as { downloads: { subject: string; file: string; bytes: number; range?: string }[] };
    expect(report.downloads.length).toBeGreaterThan(3);
    expect(report.downloads).toContainEqual(expect.objectContaining({ subject: 'cust-1', file: 'edr-2.1.0.tar.gz', bytes: 100, range: 'bytes=100-199' }));
    expect(report.downloads).toContainEqual(expect.objectContaining({ subject: 'cust-1', file: 'edr-2.1.0.tar.gz', bytes: payload.length }));
    expect((await call('customer', '/v1/reports/downloads?tenant=acme')).status).toBe(403);
  });
});

describe('bad input is a 4xx, never a 500', () => {
  it.each([
    ['no metadata', { 'upload-length': '10' }, 400],
    ['no Tus-Resumable', { 'tus-resumable': '', 'upload-length': '10', 'upload-metadata': metadata({ product: 'edr', filename: 'a', sha256: 'a'.repeat(64) }) }, 412],
    ['bad base64 pair', { 'upload-length': '10', 'upload-metadata': 'product ###' }, 400],
    ['unknown key', { 'upload-length': '10', 'upload-metadata': `${metadata({ product: 'edr', filename: 'a', sha256: 'a'.repeat(64) })},evil ${b64('x')}` }, 400],
    ['bad version', { 'upload-length': '10', 'upload-metadata': metadata({ product: 'edr', filename: 'a', sha256: 'a'.repeat(64), version: 'latest' }) }, 400],
    ['path in file name', { 'upload-length': '10', 'upload-metadata': metadata({ product: 'edr', filename: '../x', sha256: 'a'.repeat(64) }) }, 400],
    ['no length', { 'upload-metadata': metadata({ product: 'edr', filename: 'a', sha256: 'a'.repeat(64) }) }, 400],
    ['zero length', { 'upload-length': '0', 'upload-metadata': metadata({ product: 'edr', filename: 'a', sha256: 'a'.repeat(64) }) }, 400],
    ['above the scanner’s limit', { 'upload-length': String(65 * MiB), 'upload-metadata': metadata({ product: 'edr', filename: 'a', sha256: 'a'.repeat(64) }) }, 413],
  ])('upload creation: %s', async (_name, headers, status) => {
    const res = await call('partner', '/v1/uploads', { method: 'POST', headers: { ...TUS, ...headers } });
    expect(res.status).toBe(status);
    expect(await res.json()).toHaveProperty('error');
  });

  it.each([
    [undefined, '/v1/products', 401],
    ['partner', '/v1/products/NOT_A_SLUG', 400],
    ['partner', '/v1/products/edr/versions/not-semver', 400],
    ['customer', '/products/edr/2.1.0/..%2Fetc', 400],
    ['partner', '/v1/uploads/0123456789abcdef0123456789abcdef', 404],
    ['operator', '/v1/reports/downloads?tenant=Bad%20Tenant', 400],
    ['customer', '/v1/products/nothing-here', 403],
    // an operator login's token is not for releases
    ['operator', '/v1/products', 403],
  ] as const)('%s GET %s → %i', async (person, path, status) => {
    const res = await call(person, path, path.startsWith('/v1/uploads/') ? { method: 'HEAD', headers: TUS } : {});
    expect(res.status).toBe(status);
  });

  it('a forged token is 401 invalid_token', async () => {
    const res = await fetch(`${base}/v1/products`, { headers: { authorization: 'Bearer eyJhbGciOiJub25lIn0.e30.' } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_token' });
  });
});
