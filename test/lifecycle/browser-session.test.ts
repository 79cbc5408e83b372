import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpsRequest, createServer, type Server } from 'node:https';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttp, FORM, form } from '@keyway/clients';
import { createBaseApp, finishApp, silentLogger } from '@keyway/kit';
import { createStore, type Store } from '@keyway/store';
import { REDIS_URL, startSuite, testPki, type Suite } from '@keyway/testkit';
import { issueCert } from '@keyway/tls';
import { browserSession, type BrowserSessionDeps } from '@keyway/web-session';
import { launchChromium } from '../browser.ts';
import { browserLogin, PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

type AuditLog = NonNullable<BrowserSessionDeps['audit']>;

// Issue 13, "Browser login" and "Links": the releases site's browser session (@keyway/web-session)
// against the real PAS (PostgreSQL, Redis, HTTPS). A tiny site on a port of its own, registered at PAS
// as a browser client, runs two instances behind one listener (round robin, as behind a load balancer)
// sharing one Redis keyspace, so both the in-process and the cross-instance serialization of
// refreshes are exercised.

/** helper A moves the releases client to the `releases` scope; until then a feed scope and a full-control user */
const SCOPE = 'feed:edr-events';
const CLIENT_ID = 'releases-session-test';
/** a minute past the 60 s the session refreshes ahead: a fresh login's token is refreshed after ~3 s */
const ACCESS_TTL_SEC = 63;
const COOKIE = /^__Host-keyway-releases=([A-Za-z0-9_-]{43}); Path=\/; HttpOnly; Secure; SameSite=Lax$/;
const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };

let suite: Suite;
let server: Server;
let siteUrl: string;
let store: Store;
let tls: { certPem: string; keyPem: string };
const audited: Array<Record<string, unknown>> = [];

/** the site's audit log, as a list: what the session records is the point here, not the trail's storage */
const auditLog: AuditLog = {
  service: 'releases-test',
  record: async (input) => {
    audited.push({ ...input });
    return {} as Awaited<ReturnType<AuditLog['record']>>;
  },
  recordBounded: async (input) => void audited.push({ ...input }),
  ready: async () => undefined,
};

beforeAll(async () => {
  // the site listens first: its redirect_uri, with its port, is registered at PAS when PAS starts
  const pki = await testPki();
  tls = issueCert(pki.ca, { commonName: 'releases-test' });
  let handler: RequestListener = (_req, res) => void res.writeHead(503).end();
  server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req: IncomingMessage, res: ServerResponse) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  siteUrl = `https://localhost:${(server.address() as AddressInfo).port}`;
  const redirectUri = `${siteUrl}/oauth2/callback`;

  suite = await startSuite({
    redisUrl: REDIS_URL,
    lifetimes: { accessTtlSec: ACCESS_TTL_SEC },
    // no leeway: a second spend of a refresh token revokes its family at once
    refreshReuseLeewaySec: 0,
    browserClients: [{ client_id: CLIENT_ID, client_name: 'Keyway releases (test)', redirect_uris: [redirectUri], scope: SCOPE }],
  });
  store = await createStore({ redisUrl: REDIS_URL, prefix: `keyway-test:${randomUUID()}:releases:` });
  const instance = () => {
    const session = browserSession(
      { issuer: suite.urls.pas, clientId: CLIENT_ID, redirectUri, scope: SCOPE, audience: suite.urls.pac, caPem: suite.pki.ca.certPem },
      { store, logger: silentLogger, audit: auditLog },
    );
    const app = createBaseApp({ service: 'releases-test', logger: silentLogger });
    app.use(session.router);
    app.use(session.requireSession);
    // the site's own page with its sign-out form. Chromium holds the redirects that answer a form to
    // form-action too: logout's 303 to / leads, without a session, to PAS's login, so PAS is named
    app.get('/account', (_req, res) => {
      res
        .set('Content-Security-Policy', `default-src 'none'; form-action 'self' ${suite.urls.pas}`)
        .type('html')
        .send('<!doctype html><form method="post" action="/logout"><button>Sign out</button></form>');
    });
    app.all('/products/{*rest}', async (req, res) => {
      const who = await session.principal(req);
      res.json({ path: req.originalUrl, sub: who?.sub, tenant: who?.tenant, roles: who?.roles, jti: who?.claims.jti, accessToken: who?.accessToken });
    });
    return finishApp(app, silentLogger);
  };
  const instances = [instance(), instance()];
  let next = 0;
  handler = (req, res) => instances[next++ % instances.length]?.(req, res);
});

afterAll(async () => {
  await new Promise<void>((resolve) => {
    server?.close(() => resolve());
    server?.closeAllConnections();
  });
  if (store) {
    const keys = await store.keys('');
    if (keys.length > 0) await store.del(...keys);
    await store.close();
  }
  await suite?.close();
});

const site = () => createHttp({ baseUrl: siteUrl, caPem: suite.pki.ca.certPem });
const setCookies = (answer: { headers: Record<string, unknown> }): string[] => ([] as string[]).concat((answer.headers['set-cookie'] as string[] | undefined) ?? []);
const cookieNamed = (answer: { headers: Record<string, unknown> }, name: string) => setCookies(answer).find((c) => c.startsWith(`${name}=`));

/** A browser opens `path` on the site without a session: the redirect to PAS and the binding cookie it got. */
async function open(path: string) {
  // the site's URL in front, so that `//host` stays a path and is not read as a URL without a scheme
  const answer = await site().get(`${siteUrl}${path}`, { headers: HTML });
  expect(answer.status).toBe(302);
  const binding = cookieNamed(answer, '__Host-keyway-releases-login')?.split(';')[0] ?? '';
  return { location: answer.headers.location as string, binding };
}

/** A browser opens `path`, signs in at PAS as `email`: PAS's redirect back to the site (not followed yet) and the binding cookie. */
async function signInAt(path: string, email: string) {
  const { location, binding } = await open(path);
  const back = await browserLogin(suite, location, email, PASSWORD);
  expect(back.status).toBe(303);
  return { callback: new URL(back.headers.location as string), binding };
}

const callback = (url: URL | string, cookie: string) => site().get(url.toString(), { headers: { ...HTML, ...(cookie && { cookie }) }, responseType: 'text' });

/** A person of a fresh tenant, signed in through the whole flow from `path`: the session cookie (name=value). */
async function signedIn(path = '/products/edr-agent') {
  const person = await provisionTenant(suite);
  const { callback: url, binding } = await signInAt(path, person.email);
  const answer = await callback(url, binding);
  expect(answer.status).toBe(303);
  const cookie = cookieNamed(answer, '__Host-keyway-releases')?.split(';')[0] as string;
  return { ...person, cookie, answer };
}

const get = (path: string, cookie: string) => site().get(path, { headers: { ...HTML, cookie } });

describe('a link opened without a session', () => {
  it('goes to PAS with PKCE S256 and a state, through the login, and back to the link with a session', async () => {
    const person = await provisionTenant(suite);
    const link = '/products/edr-agent/7.2.1/agent.msi?mirror=eu';
    const first = await site().get(link, { headers: HTML });
    expect(first.status).toBe(302);
    expect(first.headers['cache-control']).toBe('no-store');
    const authorize = new URL(first.headers.location as string);
    expect(authorize.origin + authorize.pathname).toBe(`${suite.urls.pas}/oauth2/authorize`);
    expect(Object.fromEntries(authorize.searchParams)).toEqual({
      response_type: 'code',
      client_id: CLIENT_ID,
      redirect_uri: `${siteUrl}/oauth2/callback`,
      scope: SCOPE,
      state: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      code_challenge: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      code_challenge_method: 'S256',
    });
    const binding = cookieNamed(first, '__Host-keyway-releases-login') as string;
    expect(binding).toMatch(/^__Host-keyway-releases-login=[A-Za-z0-9_-]{43}; Max-Age=600; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/);

    const back = await browserLogin(suite, authorize.href, person.email, PASSWORD);
    const returned = new URL(back.headers.location as string);
    expect(returned.searchParams.get('state')).toBe(authorize.searchParams.get('state'));
    const done = await callback(returned, binding.split(';')[0] as string);
    expect(done.status).toBe(303);
    expect(done.headers.location).toBe(link);
    expect(done.headers['cache-control']).toContain('no-store');
    const sessionCookie = cookieNamed(done, '__Host-keyway-releases') as string;
    expect(sessionCookie).toMatch(COOKIE);
    const cookie = sessionCookie.split(';')[0] as string;

    const opened = await get(link, cookie);
    expect(opened.status).toBe(200);
    expect(opened.data).toMatchObject({ path: link, sub: person.user.id, tenant: person.tenant, roles: ['full-control'] });
    expect(audited).toContainEqual(expect.objectContaining({ action: 'session.started', outcome: 'success', subject: person.user.id, tenant: person.tenant, clientId: CLIENT_ID }));

    // the store holds neither the cookie's value nor a token in clear
    const id = COOKIE.exec(sessionCookie)?.[1] as string;
    const held = await Promise.all((await store.keys('')).map(async (key) => `${key} ${await store.get(key)}`));
    expect(held.join('\n')).not.toContain(id);
    expect(held.join('\n')).not.toContain(opened.data.accessToken);
    expect(held.join('\n')).not.toContain(opened.data.accessToken.split('.')[1]);
  });

  it('in two tabs at once: each sign-in comes back to its own link, with the one binding of the browser', async () => {
    const person = await provisionTenant(suite);
    const first = await open('/products/first');
    const second = await site().get(`${siteUrl}/products/second`, { headers: { ...HTML, cookie: first.binding } });
    expect(cookieNamed(second, '__Host-keyway-releases-login')?.split(';')[0]).toBe(first.binding);
    const backs = [await browserLogin(suite, first.location, person.email, PASSWORD), await browserLogin(suite, second.headers.location as string, person.email, PASSWORD)];
    const done = [await callback(backs[1]?.headers.location as string, first.binding), await callback(backs[0]?.headers.location as string, first.binding)];
    expect(done.map((answer) => [answer.status, answer.headers.location])).toEqual([
      [303, '/products/second'],
      [303, '/products/first'],
    ]);
  });

  it('starts every login under a new session id (no fixation): the id the browser came with ends', async () => {
    const { cookie, email } = await signedIn();
    const { accessToken } = (await get('/products/a', cookie)).data;
    const again = await signInAt('/products/a', email);
    const answer = await callback(again.callback, `${again.binding}; ${cookie}`);
    expect(answer.status).toBe(303);
    const renewed = cookieNamed(answer, '__Host-keyway-releases')?.split(';')[0] as string;
    expect(renewed).toMatch(/^__Host-keyway-releases=[A-Za-z0-9_-]{43}$/);
    expect(renewed).not.toBe(cookie);
    expect((await get('/products/a', renewed)).status).toBe(200);
    expect((await get('/products/a', cookie)).status).toBe(302);
    // the ended session's tokens are revoked at PAS, not left live
    expect((await rawClient(suite, 'pas', 'pac').post('/oauth2/introspect', form({ token: accessToken }), { headers: FORM })).data.active).toBe(false);
  });

  it('answers a program or a POST 401 login_required with a challenge, and never redirects it', async () => {
    const api = await site().get('/products/edr-agent', { headers: { accept: 'application/json' } });
    const post = await site().post('/products/edr-agent', '', { headers: HTML });
    for (const answer of [api, post]) {
      expect(answer.status).toBe(401);
      expect(answer.data).toEqual({ error: 'login_required', error_description: expect.any(String) });
      expect(answer.headers['www-authenticate']).toBe(`Cookie realm="${siteUrl}"`);
      expect(answer.headers.location).toBeUndefined();
    }
    const forged = await site().get('/products/edr-agent', { headers: { ...HTML, cookie: `__Host-keyway-releases=${randomBytes(32).toString('base64url')}` } });
    expect(forged.status).toBe(302);
    expect(cookieNamed(forged, '__Host-keyway-releases')).toMatch(/^__Host-keyway-releases=; Path=\/; Expires=Thu, 01 Jan 1970/);
  });

  it('goes back only to a path on this site: //evil.example and an absolute https://evil target land on /', async () => {
    const person = await provisionTenant(suite);
    const scheme = await signInAt('//evil.example', person.email);
    expect((await callback(scheme.callback, scheme.binding)).headers.location).toBe('/');

    // a request target in absolute form (RFC 9112 §3.2.2), as a proxy would send it
    const absolute = await new Promise<{ location: string; binding: string }>((resolve, reject) => {
      const port = new URL(siteUrl).port;
      const req = httpsRequest({ host: '127.0.0.1', servername: 'localhost', port, path: 'https://evil/products/x', headers: { ...HTML, host: 'evil' }, ca: suite.pki.ca.certPem }, (res) => {
        res.resume();
        const binding = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-keyway-releases-login='));
        resolve({ location: res.headers.location ?? `status ${res.statusCode}`, binding: binding?.split(';')[0] ?? '' });
      });
      req.on('error', reject);
      req.end();
    });
    const back = await browserLogin(suite, absolute.location, person.email, PASSWORD);
    expect((await callback(back.headers.location as string, absolute.binding)).headers.location).toBe('/');
  });
});

/** Another site instance of its own (its own listener), with `options` over the test site's; `use` calls it, then it is closed. */
async function otherSite(options: Partial<Parameters<typeof browserSession>[0]>, use: (url: string) => Promise<void>) {
  const session = browserSession(
    { issuer: suite.urls.pas, clientId: CLIENT_ID, redirectUri: `${siteUrl}/oauth2/callback`, scope: SCOPE, audience: suite.urls.pac, caPem: suite.pki.ca.certPem, ...options },
    { store: store.scoped(randomUUID()), logger: silentLogger },
  );
  const app = createBaseApp({ service: 'releases-test', logger: silentLogger });
  app.use(session.requireSession);
  const listener = createServer({ cert: tls.certPem, key: tls.keyPem }, finishApp(app, silentLogger));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  try {
    await use(`https://localhost:${(listener.address() as AddressInfo).port}`);
  } finally {
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  }
}

describe('PAS as the site knows it', () => {
  it('is refused when its discovery document names another issuer (RFC 8414 §3.3): no redirect to it', async () => {
    // the same PAS configured under another spelling of its URL: the metadata's issuer differs
    await otherSite({ issuer: suite.urls.pas.replace('localhost', '127.0.0.1') }, async (url) => {
      const answer = await createHttp({ baseUrl: url, caPem: suite.pki.ca.certPem }).get('/products/a', { headers: HTML });
      expect({ status: answer.status, location: answer.headers.location }).toEqual({ status: 500, location: undefined });
      expect(answer.data).toEqual({ error: 'server_error', error_description: expect.any(String) });
    });
  });
});

describe('sign-ins started', () => {
  it('are limited per address and minute (each is held 10 minutes): 429 with Retry-After beyond', async () => {
    await otherSite({ signInsPerMinute: 3 }, async (url) => {
      const client = createHttp({ baseUrl: url, caPem: suite.pki.ca.certPem });
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await client.get(`/products/${i}`, { headers: HTML }));
      expect(answers.map((a) => a.status)).toEqual([302, 302, 302, 429]);
      expect(answers[3]?.data).toMatchObject({ error: 'too_many_requests' });
      expect(Number(answers[3]?.headers['retry-after'])).toBeGreaterThan(0);
    });
  });
});

describe('GET /oauth2/callback refuses', () => {
  const refusedPage = (answer: { status: number; headers: Record<string, unknown>; data: unknown }, status = 400) => {
    expect({ status: answer.status, location: answer.headers.location, session: cookieNamed(answer, '__Host-keyway-releases') }).toEqual({ status, location: undefined, session: undefined });
    expect(answer.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(answer.headers['content-security-policy']).toContain("default-src 'none'");
  };

  it('an unknown state, a wrong or missing iss, another browser’s state, and a replay', async () => {
    const person = await provisionTenant(suite);
    const withParam = (url: URL, name: string, value: string | undefined) => {
      const changed = new URL(url);
      if (value === undefined) changed.searchParams.delete(name);
      else changed.searchParams.set(name, value);
      return changed;
    };
    const badState = await signInAt('/products/a', person.email);
    refusedPage(await callback(withParam(badState.callback, 'state', randomBytes(32).toString('base64url')), badState.binding));

    const wrongIss = await signInAt('/products/a', person.email);
    refusedPage(await callback(withParam(wrongIss.callback, 'iss', 'https://evil.example'), wrongIss.binding));
    // the state was spent by the refused attempt: the genuine answer after it is refused too
    refusedPage(await callback(wrongIss.callback, wrongIss.binding));

    const noIss = await signInAt('/products/a', person.email);
    refusedPage(await callback(withParam(noIss.callback, 'iss', undefined), noIss.binding));

    // login CSRF: the attacker's own callback opened in another browser (no binding cookie, or another one)
    const attackers = await signInAt('/products/a', person.email);
    const victim = await open('/products/b');
    refusedPage(await callback(attackers.callback, victim.binding));
    refusedPage(await callback(attackers.callback, ''));

    const genuine = await signInAt('/products/a', person.email);
    expect((await callback(genuine.callback, genuine.binding)).status).toBe(303);
    const replayed = await callback(genuine.callback, genuine.binding);
    refusedPage(replayed);
    expect(replayed.data).toContain('<code>invalid_request</code>');
  });

  it('access_denied from PAS: a 403 page, no session', async () => {
    const { email } = await provisionTenant(suite, { roles: ['downloader'] });
    const { callback: url, binding } = await signInAt('/products/a', email);
    expect(url.searchParams.get('error')).toBe('access_denied');
    const answer = await callback(url, binding);
    refusedPage(answer, 403);
    expect(answer.data).toContain('<code>access_denied</code>');
  });
});

describe('the access token running out', () => {
  it('is refreshed transparently, and concurrent requests of one session spend its refresh token once', async () => {
    const { cookie, tenant } = await signedIn();
    const first = await get('/products/a', cookie);
    expect(first.status).toBe(200);
    // within 60 s of its expiry: the next request refreshes
    await sleep(3_500);
    const refreshed = await get('/products/a', cookie);
    expect(refreshed.status).toBe(200);
    expect(refreshed.data.jti).not.toBe(first.data.jti);
    expect(refreshed.data).toMatchObject({ sub: first.data.sub, tenant });

    await sleep(3_500);
    // both instances, two requests each, at once: one refresh, everyone gets its pair
    const together = await Promise.all(Array.from({ length: 4 }, () => get('/products/a', cookie)));
    expect(together.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    const jtis = new Set(together.map((a) => a.data.jti));
    expect(jtis.size).toBe(1);
    expect(jtis.has(refreshed.data.jti)).toBe(false);

    // the family is alive: the rotated token refreshes again, and PAS saw no reuse
    await sleep(3_500);
    const later = await get('/products/a', cookie);
    expect(later.status).toBe(200);
    expect(jtis.has(later.data.jti)).toBe(false);
    const actions = (await suite.auditor.events({ tenant, limit: 200 })).events.map((e) => e.action);
    expect(actions.filter((a) => a === 'token.refreshed' || a === 'token.issued').length).toBeGreaterThanOrEqual(4);
    expect(actions).not.toContain('refresh.reuse_detected');
    expect(actions).not.toContain('refresh_family.revoked');
  });
  it('ends the session when PAS refuses the refresh (its family revoked): the link goes through the login again', async () => {
    const { cookie } = await signedIn();
    const { accessToken } = (await get('/products/a', cookie)).data;
    // RFC 7009 at PAS, as an operator's removal in strict mode would: either token of the pair revokes the family
    await suite.pas.revoke(accessToken, 'access_token');
    await sleep(3_500);
    const answer = await get('/products/a', cookie);
    expect(answer.status).toBe(302);
    expect(answer.headers.location).toMatch(new RegExp(`^${suite.urls.pas}/oauth2/authorize\\?`));
    expect(cookieNamed(answer, '__Host-keyway-releases')).toMatch(/^__Host-keyway-releases=; Path=\/; Expires=Thu, 01 Jan 1970/);
  });
});

describe('POST /logout', () => {
  const introspect = async (token: string) => (await rawClient(suite, 'pas', 'pac').post('/oauth2/introspect', form({ token }), { headers: FORM })).data.active;

  it('is refused cross-site, and changes nothing', async () => {
    const { cookie } = await signedIn();
    const attempts = [{ origin: 'https://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, {}];
    for (const headers of attempts) {
      const answer = await site().post('/logout', '', { headers: { ...headers, cookie } });
      expect({ headers, status: answer.status, cleared: cookieNamed(answer, '__Host-keyway-releases') }).toEqual({ headers, status: 403, cleared: undefined });
      expect(answer.data).toMatchObject({ error: 'access_denied' });
    }
    expect((await get('/products/a', cookie)).status).toBe(200);
  });

  it('revokes the session’s tokens at PAS, deletes the session and clears the cookie', async () => {
    const { cookie, tenant } = await signedIn();
    const { accessToken } = (await get('/products/a', cookie)).data;
    expect(await introspect(accessToken)).toBe(true);

    const answer = await site().post('/logout', '', { headers: { origin: siteUrl, cookie, ...HTML } });
    expect(answer.status).toBe(303);
    expect(answer.headers.location).toBe('/');
    expect(cookieNamed(answer, '__Host-keyway-releases')).toMatch(/^__Host-keyway-releases=; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax$/);
    // RFC 7009: the refresh token's family is revoked, its access token with it
    expect(await introspect(accessToken)).toBe(false);
    expect((await suite.auditor.events({ tenant, action: 'refresh_family.revoked' })).events).toEqual([expect.objectContaining({ reason: 'client_revocation' })]);
    expect(audited).toContainEqual(expect.objectContaining({ action: 'session.ended', outcome: 'success', tenant, reason: 'logout' }));
    // the old cookie opens nothing: the link goes through the login again
    expect((await get('/products/a', cookie)).status).toBe(302);

    // Sec-Fetch-Site same-origin without Origin is this site too; without a session there is nothing to revoke
    const again = await site().post('/logout', '', { headers: { 'sec-fetch-site': 'same-origin', cookie } });
    expect(again.status).toBe(303);
  });
});

describe('in Chromium', () => {
  it('a bookmarked link: the login page, back on the link signed in; logout from another origin of the site is refused, from the site’s page it ends the session', async () => {
    const person = await provisionTenant(suite);
    const browser = await launchChromium('the browser session test');
    try {
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      const link = `${siteUrl}/products/edr-agent/7.2.1/agent.msi`;
      await page.goto(link);
      expect(page.url()).toMatch(new RegExp(`^${suite.urls.pas}/oauth2/authorize\\?`));
      await page.fill('#email', person.email);
      await page.fill('#password', PASSWORD);
      await page.click('button[type=submit]');
      await page.waitForURL(link, { timeout: 10_000 });
      expect(JSON.parse((await page.textContent('body')) ?? '{}')).toMatchObject({ sub: person.user.id, tenant: person.tenant });
      const session = (await context.cookies(siteUrl)).find((c) => c.name === '__Host-keyway-releases');
      expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/', expires: -1 });

      // a page of another origin on the same site (another port of localhost: SameSite does not hold the cookie back)
      // posting to the site's logout: the cookie comes along, Sec-Fetch-Site (same-site) and Origin give it away
      const other = createServer({ cert: tls.certPem, key: tls.keyPem }, (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><form method="post" action="${siteUrl}/logout"><button>win a prize</button></form>`);
      });
      await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
      try {
        const lure = await context.newPage();
        await lure.goto(`https://localhost:${(other.address() as AddressInfo).port}/`);
        const [answer] = await Promise.all([lure.waitForNavigation(), lure.click('button')]);
        expect(answer?.status()).toBe(403);
        // a browser is answered with a page
        expect(await lure.textContent('code')).toBe('access_denied');
      } finally {
        await new Promise<void>((resolve) => other.close(() => resolve()));
      }
      expect((await get('/products/a', `__Host-keyway-releases=${session?.value}`)).status).toBe(200);

      // signing out on the site's page: back at / without a session, which is the login again
      await page.goto(`${siteUrl}/account`);
      await Promise.all([page.waitForURL(new RegExp(`^${suite.urls.pas}/oauth2/authorize\\?`)), page.click('button')]);
      expect((await context.cookies(siteUrl)).find((c) => c.name === '__Host-keyway-releases')).toBeUndefined();
      expect((await get('/products/a', `__Host-keyway-releases=${session?.value}`)).status).toBe(302);
    } finally {
      await browser.close();
    }
  });
});
