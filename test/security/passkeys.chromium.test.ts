import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, FORM, form, idpClient } from '@keyway/clients';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { launchChromium } from '../browser.ts';
import { openLoginPage, PASSWORD, provisionTenant, rawClient } from '../helpers.ts';
import { authorizationUrl, pkce } from '../lifecycle/authorization.ts';

// Issue 14, second bullet: passkeys on PAS's login page, in Debian's Chromium with a virtual
// authenticator (the DevTools WebAuthn domain), against the real suite (PostgreSQL, Redis, HTTPS).
// A person signs in with a password, adds a passkey at the offer, and later signs in with the passkey
// alone, from another browser profile holding the same credential; the token names them, with amr
// hwk + mfa. A passkey the IdP does not know, and an assertion presented again, are refused.

const CLIENT_ID = 'passkeys-test';
// nothing listens here: the test reads the code from the browser's request for it (Playwright does not route redirected requests)
const REDIRECT_URI = 'https://localhost:8449/oauth2/callback';
const SCOPE = 'feed:edr-events';

let suite: Suite;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, browserClients: [{ client_id: CLIENT_ID, client_name: 'Passkeys test', redirect_uris: [REDIRECT_URI], scope: SCOPE }] });
  browser = await launchChromium('the passkeys test');
}, 120_000);
afterAll(async () => {
  for (const context of contexts) await context.close();
  await browser?.close();
  await suite?.close();
});

interface VirtualAuthenticator {
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
  /** the client's callback URLs the browser was redirected to */
  callbacks: URL[];
  /** the bodies the page posted to /oauth2/passkey/login */
  passkeyPosts: string[];
}

/** A browser profile of its own with a user-verifying platform authenticator (a phone's or laptop's screen lock). */
async function profileWithAuthenticator(): Promise<VirtualAuthenticator> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  contexts.push(context);
  const callbacks: URL[] = [];
  const passkeyPosts: string[] = [];
  const page = await context.newPage();
  page.on('request', (request) => {
    if (request.url().startsWith(`${REDIRECT_URI}?`)) callbacks.push(new URL(request.url()));
    if (request.method() === 'POST' && request.url().endsWith('/oauth2/passkey/login')) passkeyPosts.push(request.postData() ?? '');
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { page, cdp, authenticatorId, callbacks, passkeyPosts };
}

/** An authorization request with PKCE, as a browser client starts it. */
function authorizationRequest() {
  const { verifier, challenge } = pkce();
  return { url: authorizationUrl(suite.urls.pas, challenge, { client_id: CLIENT_ID, redirect_uri: REDIRECT_URI, scope: SCOPE, state: 'st' }), verifier };
}

/** The client's redemption of the code (RFC 6749 §4.1.3, PKCE): the access token's claims. */
async function redeem(callback: URL, verifier: string) {
  const code = callback.searchParams.get('code');
  expect(code, `callback ${callback.href}`).toBeTruthy();
  expect(callback.searchParams.get('iss')).toBe(suite.urls.pas);
  const answer = await rawClient(suite, 'pas').post(
    '/oauth2/token',
    form({ grant_type: 'authorization_code', code: code as string, redirect_uri: REDIRECT_URI, client_id: CLIENT_ID, code_verifier: verifier }),
    { headers: FORM },
  );
  expect(answer.status).toBe(200);
  return decodeJwt((answer.data as { access_token: string }).access_token);
}

const idpAsPas = () => idpClient({ baseUrl: suite.urls.idp, caPem: suite.pki.ca.certPem, clientCert: suite.pki.certs.pas });

let person: Awaited<ReturnType<typeof provisionTenant>>;
/** the credential the person registered, as the authenticator holds it (private key included: the test's own copy) */
let registered: { credentialId: string; privateKey: string; rpId?: string; userHandle?: string; signCount: number; isResidentCredential: boolean };
/** the body of a passkey sign-in that succeeded */
let usedAssertion: string;

describe('passkeys on the PAS login page (issue 14)', { timeout: 60_000 }, () => {
  it('a person signs in with a password, adds a passkey at the offer, and is redirected with the code', async () => {
    person = await provisionTenant(suite);
    const { page, cdp, authenticatorId, callbacks } = await profileWithAuthenticator();
    const { url, verifier } = authorizationRequest();
    await page.goto(url);
    await expect.poll(() => page.locator('button[data-passkey="sign-in"]').isVisible()).toBe(true);
    // the page's script has seen that this device can make a passkey
    await page.locator('input[name="offer_passkey"]').waitFor({ state: 'attached' });
    await page.fill('#email', person.email);
    await page.fill('#password', PASSWORD);
    await page.click('form[action="/oauth2/login"] button[type=submit]');

    await expect.poll(() => page.locator('h1').textContent()).toBe('Add a passkey to this account');
    await page.click('button[data-passkey="register"]');
    await expect.poll(() => callbacks.length, { timeout: 15_000 }).toBe(1);
    const claims = await redeem(callbacks[0] as URL, verifier);
    expect(claims.sub).toBe(person.user.id);
    expect(claims.amr).toEqual(['pwd']);

    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    registered = credentials[0] as typeof registered;
    expect(registered.isResidentCredential).toBe(true);
    expect(registered.rpId).toBe('localhost');

    // the IdP's trail names the registration; the database holds the public key only
    const events = (await suite.audit.query<{ event: string }>(`SELECT event FROM keyway_audit.events WHERE stream = 'idp'`)).map((r) => JSON.parse(r.event) as Record<string, unknown>);
    expect(events.find((e) => e.action === 'passkey.registered' && e.subject === person.user.id)).toMatchObject({ outcome: 'success', tenant: person.tenant });
    const rows = await suite.audit.query<{ sub: string; key_length: number }>('SELECT sub, length(public_key) AS key_length FROM keyway_idp.passkeys WHERE credential_id = $1', [
      Buffer.from(registered.credentialId, 'base64').toString('base64url'),
    ]);
    expect(rows).toEqual([{ sub: person.user.id, key_length: expect.any(Number) }]);
    expect(JSON.stringify(events)).not.toContain(registered.privateKey);
  });

  it('the same passkey in another browser profile signs in alone: the token names the person, with amr hwk + mfa', async () => {
    const { page, cdp, authenticatorId, callbacks, passkeyPosts } = await profileWithAuthenticator();
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: registered });
    const { url, verifier } = authorizationRequest();
    await page.goto(url);
    await page.click('button[data-passkey="sign-in"]');
    await expect.poll(() => callbacks.length, { timeout: 15_000 }).toBe(1);
    const claims = await redeem(callbacks[0] as URL, verifier);
    expect(claims.sub).toBe(person.user.id);
    expect(claims.tid).toBe(person.tenant);
    expect(claims.amr).toEqual(['hwk', 'mfa']);
    expect(claims.acr).toBe('urn:keyway:acr:mfa');
    expect(Math.abs((claims.auth_time as number) - Date.now() / 1000)).toBeLessThan(60);
    expect(passkeyPosts).toHaveLength(1);
    usedAssertion = new URLSearchParams(passkeyPosts[0]).get('credential') as string;
  });

  it('an assertion presented again is refused: at the IdP (400 invalid_grant) and on the login page', async () => {
    const replay = await idpAsPas()
      .verifyPasskey(JSON.parse(usedAssertion))
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(replay).toBeInstanceOf(ApiError);
    expect(replay).toMatchObject({ status: 400, code: 'invalid_grant' });

    const login = await openLoginPage(suite, authorizationRequest().url);
    const answer = await rawClient(suite, 'pas').post<string>('/oauth2/passkey/login', new URLSearchParams({ request: login.request, credential: usedAssertion }).toString(), {
      headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', cookie: login.cookie },
      responseType: 'text',
    });
    expect(answer.status).toBe(400);
    expect(answer.data).toContain('This passkey was not accepted');
    expect(answer.headers.location).toBeUndefined();
  });

  it('an authenticator without the registered credential cannot sign in, and the page says why', async () => {
    // a passkey for this site that the IdP never registered (made elsewhere, or for an account since removed)
    const { page, cdp, authenticatorId, callbacks } = await profileWithAuthenticator();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await cdp.send('WebAuthn.addCredential', {
      authenticatorId,
      credential: {
        credentialId: randomBytes(32).toString('base64'),
        isResidentCredential: true,
        rpId: 'localhost',
        privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
        userHandle: randomBytes(32).toString('base64'),
        signCount: 0,
      },
    });
    await page.goto(authorizationRequest().url);
    await page.click('button[data-passkey="sign-in"]');
    await expect.poll(() => page.locator('[role=alert]').textContent(), { timeout: 15_000 }).toContain('This passkey was not accepted');
    expect(callbacks).toHaveLength(0);

    // and a device holding no passkey for this site at all: the script says so, nothing is posted
    const empty = await profileWithAuthenticator();
    await empty.page.goto(authorizationRequest().url);
    await empty.page.click('button[data-passkey="sign-in"]');
    await expect.poll(() => empty.page.locator('.passkey-status').textContent(), { timeout: 30_000 }).toContain('No passkey was used');
    expect(empty.passkeyPosts).toHaveLength(0);
  });

  it('a password sign-in of someone who has a passkey goes straight back to the client', async () => {
    const { page, callbacks } = await profileWithAuthenticator();
    const { url, verifier } = authorizationRequest();
    await page.goto(url);
    await page.locator('input[name="offer_passkey"]').waitFor({ state: 'attached' });
    await page.fill('#email', person.email);
    await page.fill('#password', PASSWORD);
    await page.click('form[action="/oauth2/login"] button[type=submit]');
    await expect.poll(() => callbacks.length, { timeout: 15_000 }).toBe(1);
    expect((await redeem(callbacks[0] as URL, verifier)).amr).toEqual(['pwd']);
  });
});
