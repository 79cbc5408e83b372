import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '@keyway/clients';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { startClamdServer, type ClamdServer } from '@keyway/testkit/servers';
import { PASSWORD, provisionReleaseTenant, provisionTenant, RELEASE_PRODUCT, rawClient } from '../helpers.ts';
import { operatorLogin, provisionOperator } from '../operators/operator.ts';

/**
 * Issue 13: the releases service in the suite, next to the others, over HTTPS with its own
 * certificate, database role and audit stream, on the real chain: the IdP checks the password, the
 * entitlement service answers the release rights (at login and at every open), PAS issues the
 * `releases` tokens, clamd scans. Each flow in detail (every refusal, Range edge, scanner outage) is
 * in services/releases/src/releases.test.ts.
 */
describe('issue 13: the releases service in the suite', () => {
  let suite: Suite;
  let clamd: ClamdServer;

  beforeAll(async () => {
    clamd = await startClamdServer();
    suite = await startSuite({ redisUrl: REDIS_URL, releases: { clamdAddress: clamd.address, clamdStreamMaxLength: '64M' } });
  }, 120_000);
  afterAll(async () => {
    await suite?.close();
    await clamd?.stop();
  });

  it('is ready (its records, its audit stream and clamd answer) and answers the operator certificate at the report', async () => {
    const ready = await rawClient(suite, 'releases').get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.data).toMatchObject({
      status: 'ready',
      checks: expect.arrayContaining([
        { name: 'scanner', ok: true },
        { name: 'audit', ok: true },
      ]),
    });
    expect(await suite.releases.downloadReport({ tenant: 'nobody-yet' })).toEqual({ tenant: 'nobody-yet', downloads: [] });
  });

  it('a feed login’s access token is not for this service (aud), and no credentials is 401', async () => {
    const t = await provisionTenant(suite, { feeds: ['edr-events'] });
    const login = await suite.pas.password(t.email, PASSWORD);
    const refused = await suite.releases.listProducts({ accessToken: login.access_token }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 401, code: 'invalid_token' });
    const anonymous = await suite.releases.listProducts({ accessToken: undefined }).catch((err: unknown) => err);
    expect(anonymous).toMatchObject({ status: 401 });
  });

  it('a publisher uploads (cut at half, resumed), clamd passes it, it is published; a customer downloads a range of it; a tier change holds at the next click', async () => {
    const { product } = RELEASE_PRODUCT;
    const version = '1.4.0';
    const name = 'agent-1.4.0.bin';
    const bytes = randomBytes(2 * 1024 * 1024 + 77);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const publisher = await provisionReleaseTenant(suite, { roles: ['publisher'], products: [product] });
    const publisherToken = (await suite.pas.password(publisher.email, PASSWORD, 'releases')).access_token;
    const releases = rawClient(suite, 'releases');
    const tus = (token: string) => ({ authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0' });
    const b64 = (text: string) => Buffer.from(text).toString('base64');

    const created = await releases.post('/v1/uploads', undefined, {
      headers: { ...tus(publisherToken), 'upload-length': String(bytes.length), 'upload-metadata': `product ${b64(product)},version ${b64(version)},filename ${b64(name)},sha256 ${b64(sha256)}` },
    });
    expect({ status: created.status, body: created.data }).toEqual({ status: 201, body: '' });
    const location = new URL(String(created.headers.location), suite.urls.releases).pathname;
    const half = Math.floor(bytes.length / 2);
    const octets = { 'content-type': 'application/offset+octet-stream' };
    expect((await releases.patch(location, bytes.subarray(0, half), { headers: { ...tus(publisherToken), ...octets, 'upload-offset': '0' } })).status).toBe(204);
    // the client went away after half: the server says where to go on from
    const offset = await releases.head(location, { headers: tus(publisherToken) });
    expect(offset.headers['upload-offset']).toBe(String(half));
    const last = await releases.patch(location, bytes.subarray(half), { headers: { ...tus(publisherToken), ...octets, 'upload-offset': String(half) } });
    expect(last.status).toBe(204);

    const as = { accessToken: publisherToken };
    for (let deadline = Date.now() + 30_000; ; await sleep(100)) {
      const file = (await suite.releases.getVersion(product, version, as)).files.find((f) => f.name === name);
      if (file?.state === 'clean') break;
      expect(file?.state, 'the file is scanned clean within 30 s').not.toMatch(/infected|too_large/);
      if (Date.now() > deadline) throw new Error(`the file is still ${file?.state} after 30 s`);
    }
    expect((await suite.releases.publish(product, version, as)).state).toBe('published');

    const customer = await provisionReleaseTenant(suite, { roles: ['downloader'] });
    const customerToken = (await suite.pas.password(customer.email, PASSWORD, 'releases')).access_token;
    const link = `/products/${product}/${version}/${name}`;
    const whole = await releases.get(link, { headers: { authorization: `Bearer ${customerToken}` }, responseType: 'arraybuffer' });
    expect(whole.status).toBe(200);
    expect(whole.headers.etag).toBe(`"${sha256}"`);
    expect(createHash('sha256').update(Buffer.from(whole.data)).digest('hex')).toBe(sha256);
    const tail = await releases.get(link, { headers: { authorization: `Bearer ${customerToken}`, range: `bytes=${half}-`, 'if-range': `"${sha256}"` }, responseType: 'arraybuffer' });
    expect(tail.status).toBe(206);
    expect(Buffer.compare(Buffer.from(tail.data), bytes.subarray(half))).toBe(0);

    // the contract changes: the tier keeps the product from 2.0.0 on. The same access token, still valid, is refused at the next click
    await suite.operator.putTier(customer.tier, { name: 'From 2.0', feeds: [], products: [{ product, versions: '>=2.0.0' }] });
    const refused = await releases.get(link, { headers: { authorization: `Bearer ${customerToken}` } });
    expect({ status: refused.status, error: refused.data.error }).toEqual({ status: 403, error: 'access_denied' });

    const report = await suite.releases.downloadReport({ tenant: customer.tenant });
    expect(report.downloads.map((d) => ({ subject: d.subject, file: d.file, bytes: d.bytes, range: d.range }))).toEqual([
      { subject: customer.user.id, file: name, bytes: bytes.length, range: undefined },
      { subject: customer.user.id, file: name, bytes: bytes.length - half, range: `bytes=${half}-${bytes.length - 1}` },
    ]);
    // the operator console shows the same report, asked with the operator's own token (its aud names the releases service)
    const operator = await provisionOperator(suite);
    const operatorToken = (await operatorLogin(suite, operator.email)).access_token;
    const viaConsole = await rawClient(suite, 'entitlement').get(`/console/tenants/${customer.tenant}/downloads`, { headers: { authorization: `Bearer ${operatorToken}` } });
    expect({ status: viaConsole.status, body: viaConsole.data }).toEqual({ status: 200, body: report });
  }, 90_000);
});
