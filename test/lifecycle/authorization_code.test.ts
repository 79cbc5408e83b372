import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { RELEASES_CLIENT, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { browserLogin, openLoginPage, PASSWORD, postLoginForm, provisionReleaseTenant, provisionTenant, rawClient } from '../helpers.ts';
import { authorizationUrl as authorizeAt, pkce } from './authorization.ts';

// Issue 13, browser login: the authorization code flow with PKCE at PAS on the real suite
// (PostgreSQL, Redis, HTTPS), for the releases site (scope releases): people are downloaders of a
// tenant whose tier gives a product. openid-client drives the whole flow in test/interop/openid-client.test.ts;
// here each refusal, spelled out.

const CODE_TTL_SEC = 3;

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, authorizationCodeTtlSec: CODE_TTL_SEC });
});
afterAll(() => suite?.close());

/** An authorization URL at this suite's PAS (test/lifecycle/authorization.ts). */
const authorizationUrl = (challenge: string, params: Record<string, string | undefined> = {}) => authorizeAt(suite.urls.pas, challenge, params);

/** Where an answer redirects the browser, and its query. */
function redirected(answer: { status: number; headers: Record<string, unknown> }) {
  expect(answer.status).toBe(303);
  const location = new URL(answer.headers.location as string);
  return { target: location.origin + location.pathname, params: Object.fromEntries(location.searchParams) };
}

const token = (fields: Record<string, string>) => rawClient(suite, 'pas').post('/oauth2/token', form(fields), { headers: FORM });

const exchange = (code: string, verifier: string, overrides: Record<string, string> = {}) =>
  token({ grant_type: 'authorization_code', code, redirect_uri: RELEASES_CLIENT.redirect_uri, client_id: RELEASES_CLIENT.client_id, code_verifier: verifier, ...overrides });

/** A person of a fresh tenant signs in: the code the client receives, with the verifier that redeems it. */
async function signedIn(params: Record<string, string | undefined> = {}) {
  const person = await provisionReleaseTenant(suite);
  const { verifier, challenge } = pkce();
  const { params: callback } = redirected(await browserLogin(suite, authorizationUrl(challenge, params), person.email, PASSWORD));
  expect(callback.code).toEqual(expect.any(String));
  return { ...person, verifier, code: callback.code as string, callback };
}

const actionsOf = async (tenant: string) => (await suite.auditor.events({ tenant, order: 'oldest', limit: 100 })).events.map((e) => `${e.action}:${e.outcome}`);

describe('GET /oauth2/authorize (RFC 6749 §4.1.1, RFC 7636, RFC 9207)', () => {
  it('answers a valid request with the login page: HTML without inline script, a strict policy, a form bound to the browser', async () => {
    const page = await openLoginPage(suite, authorizationUrl(pkce().challenge));
    expect(page.response.status).toBe(200);
    expect(page.response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.response.headers['cache-control']).toBe('no-store');
    const csp = page.response.headers['content-security-policy'];
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    // the form posts to PAS, whose answer redirects to the client: form-action governs both
    expect(csp).toContain("form-action 'self' https://localhost:8447");
    expect(page.response.headers['x-frame-options']).toBe('DENY');
    expect(page.response.data).toMatch(/^<!doctype html>/);
    // one script, PAS's own file, for passkeys (issue 14); nothing inline, and CSP allows nothing else
    expect(page.response.data.match(/<script[^>]*>/gi)).toEqual(['<script src="/oauth2/assets/passkeys.js" defer>']);
    expect(page.response.data).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(page.response.data).toContain('Keyway releases');
    expect(page.request).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(page.cookie).toMatch(/^__Host-keyway-browser=[A-Za-z0-9_-]{43}$/);
    expect(page.response.headers['set-cookie']?.[0]).toMatch(/; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
  });

  it('never redirects for an unknown client or a redirect_uri not registered exactly: a 400 page (JSON for a program)', async () => {
    const { challenge } = pkce();
    const cases = [
      { client_id: 'someone-else' },
      { client_id: undefined },
      { redirect_uri: 'https://attacker.example/callback' },
      { redirect_uri: `${RELEASES_CLIENT.redirect_uri}/` },
      { redirect_uri: `${RELEASES_CLIENT.redirect_uri}?next=x` },
      { redirect_uri: undefined },
    ];
    for (const params of cases) {
      const page = await openLoginPage(suite, authorizationUrl(challenge, params));
      expect({ params, status: page.response.status, location: page.response.headers.location }).toEqual({ params, status: 400, location: undefined });
      expect(page.response.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.response.data).toContain('<code>invalid_request</code>');
      expect(page.request).toBe('');
    }
    const program = await rawClient(suite, 'pas').get(authorizationUrl(challenge, { redirect_uri: 'https://attacker.example/callback' }));
    expect(program.status).toBe(400);
    expect(program.data).toEqual({ error: 'invalid_request', error_description: 'the redirect_uri is missing or is not registered for this client' });
  });

  it('redirects every other refusal to the client with error, state and iss', async () => {
    const { challenge } = pkce();
    const cases: Array<[Record<string, string | undefined>, string, RegExp]> = [
      [{ code_challenge_method: 'plain', code_challenge: 'a'.repeat(43) }, 'invalid_request', /transform algorithm not supported/],
      [{ code_challenge_method: undefined }, 'invalid_request', /S256/],
      [{ code_challenge: undefined }, 'invalid_request', /code_challenge/],
      [{ code_challenge: 'too-short' }, 'invalid_request', /code_challenge/],
      [{ response_type: 'token' }, 'unsupported_response_type', /code/],
      [{ response_type: undefined }, 'invalid_request', /response_type/],
      [{ scope: 'operator' }, 'invalid_scope', /may ask for: releases/],
    ];
    for (const [params, error, description] of cases) {
      const answer = await openLoginPage(suite, authorizationUrl(challenge, params));
      const { target, params: back } = redirected(answer.response);
      expect({ params, target, error: back.error, state: back.state, iss: back.iss }).toEqual({ params, target: RELEASES_CLIENT.redirect_uri, error, state: 'st-123', iss: suite.urls.pas });
      expect(back.error_description).toMatch(description);
      expect(back.code).toBeUndefined();
    }
    // a parameter given twice (RFC 6749 §3.1)
    const twice = await openLoginPage(suite, `${authorizationUrl(challenge)}&scope=a&scope=b`);
    expect(redirected(twice.response).params).toMatchObject({ error: 'invalid_request', state: 'st-123', iss: suite.urls.pas });
  });

  it('passes no state back when the client sent none, on success and on refusal', async () => {
    const { callback } = await signedIn({ state: undefined });
    expect(Object.keys(callback).sort()).toEqual(['code', 'iss']);
    const refused = await openLoginPage(suite, authorizationUrl(pkce().challenge, { state: undefined, response_type: 'token' }));
    expect(Object.keys(redirected(refused.response).params).sort()).toEqual(['error', 'error_description', 'iss']);
  });
});

describe('POST /oauth2/login: the login form', () => {
  it('refuses a form without its page’s cookie or pending request (CSRF): a 400 page, no redirect, no login', async () => {
    const { email } = await provisionReleaseTenant(suite);
    const page = await openLoginPage(suite, authorizationUrl(pkce().challenge));
    const other = await openLoginPage(suite, authorizationUrl(pkce().challenge));
    const posts = [
      postLoginForm(suite, { request: page.request, email, password: PASSWORD }),
      postLoginForm(suite, { request: page.request, email, password: PASSWORD }, other.cookie),
      postLoginForm(suite, { email, password: PASSWORD }, page.cookie),
      postLoginForm(suite, { request: randomBytes(32).toString('base64url'), email, password: PASSWORD }, page.cookie),
    ];
    for (const answer of await Promise.all(posts)) {
      expect({ status: answer.status, location: answer.headers.location }).toEqual({ status: 400, location: undefined });
      expect(answer.data).toContain('<code>invalid_request</code>');
    }
    // the pending request is still there for its own browser
    const own = await postLoginForm(suite, { request: page.request, email, password: PASSWORD }, page.cookie);
    expect(redirected(own).params).toMatchObject({ code: expect.any(String), state: 'st-123', iss: suite.urls.pas });
    // and it is single use
    const again = await postLoginForm(suite, { request: page.request, email, password: PASSWORD }, page.cookie);
    expect({ status: again.status, location: again.headers.location }).toEqual({ status: 400, location: undefined });
  });

  it('shows the page again on a wrong password or an unknown account, with one message; the same page then signs in', async () => {
    const { tenant, email } = await provisionReleaseTenant(suite);
    const page = await openLoginPage(suite, authorizationUrl(pkce().challenge));
    const wrong = await postLoginForm(suite, { request: page.request, email, password: 'not the password at all' }, page.cookie);
    const unknown = await postLoginForm(suite, { request: page.request, email: `nobody@${tenant}.example`, password: 'not the password at all' }, page.cookie);
    for (const answer of [wrong, unknown]) {
      expect({ status: answer.status, location: answer.headers.location }).toEqual({ status: 400, location: undefined });
      expect(answer.data).toContain('The email or password is incorrect.');
      expect(answer.data).toContain(`name="request" value="${page.request}"`);
      expect(answer.headers['content-security-policy']).toContain("default-src 'none'");
    }
    const right = await postLoginForm(suite, { request: page.request, email, password: PASSWORD }, page.cookie);
    expect(redirected(right).params.code).toEqual(expect.any(String));
    // a failed login names no tenant yet: it is found by the email tried
    const failed = (await suite.auditor.events({ action: 'login.failed', limit: 500 })).events.filter((e) => e.detail?.username === email);
    expect(failed).toEqual([expect.objectContaining({ outcome: 'denied', clientId: RELEASES_CLIENT.client_id, reason: 'invalid_grant' })]);
    expect(await actionsOf(tenant)).toContain('authorization_code.issued:success');
  });

  it('redirects access_denied when the entitlement service refuses the person (with state and iss)', async () => {
    // a feed role grants nothing on releases; a downloader whose tier gives no product has none either
    const feedsOnly = await provisionTenant(suite);
    const noProduct = await provisionReleaseTenant(suite, { tierProducts: [] });
    for (const { tenant, email } of [feedsOnly, noProduct]) {
      const { params } = redirected(await browserLogin(suite, authorizationUrl(pkce().challenge), email, PASSWORD));
      expect(params).toMatchObject({ error: 'access_denied', state: 'st-123', iss: suite.urls.pas });
      expect(params.code).toBeUndefined();
      expect(await actionsOf(tenant)).toContain('authorization.denied:denied');
    }
  });

  it('is throttled like the password grant: the page says when to try again (429, Retry-After)', async () => {
    const { email } = await provisionReleaseTenant(suite);
    const page = await openLoginPage(suite, authorizationUrl(pkce().challenge));
    let answer = await postLoginForm(suite, { request: page.request, email, password: 'wrong wrong wrong' }, page.cookie);
    // the password grant and the form count together (LOGIN_FAILURES_PER_ACCOUNT_SOURCE, 5)
    for (let i = 0; i < 5 && answer.status !== 429; i++) {
      await token({ grant_type: 'password', username: email, password: 'wrong wrong wrong' });
      answer = await postLoginForm(suite, { request: page.request, email, password: 'wrong wrong wrong' }, page.cookie);
    }
    expect(answer.status).toBe(429);
    expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
    expect(answer.data).toContain('Too many failed sign-ins.');
  });
});

describe('POST /oauth2/token grant_type=authorization_code (RFC 6749 §4.1.3, RFC 7636 §4.6)', () => {
  it('issues the usual pair, audited as token.issued, whose refresh token refreshes', async () => {
    const { tenant, code, verifier } = await signedIn();
    const answer = await exchange(code, verifier);
    expect(answer.status).toBe(200);
    expect(answer.headers['cache-control']).toBe('no-store');
    expect(answer.data).toMatchObject({ token_type: 'Bearer', expires_in: 1200, scope: 'releases', refresh_token: expect.any(String) });
    // the release-only role is accepted, and its rights travel in the tokens for the releases site
    const releases = { 'edr-agent': { rights: ['download'], versions: '>=1.0.0' } };
    expect(decodeJwt(answer.data.access_token)).toMatchObject({ aud: suite.urls.releases, roles: ['downloader'], releases });
    const refreshed = await suite.pas.refresh(answer.data.refresh_token);
    expect(refreshed.scope).toBe('releases');
    expect(decodeJwt(refreshed.access_token)).toMatchObject({ releases });
    const events = (await suite.auditor.events({ tenant, action: 'token.issued' })).events;
    expect(events).toEqual([
      expect.objectContaining({ outcome: 'success', clientId: RELEASES_CLIENT.client_id, detail: expect.objectContaining({ grant_type: 'authorization_code', code_id: expect.any(String) }) }),
    ]);
    expect(JSON.stringify(await suite.auditor.events({ tenant }))).not.toContain(code);
  });

  it('refuses a wrong verifier, another redirect_uri or client with invalid_grant; the code is spent by the attempt', async () => {
    const wrongs: Record<string, string>[] = [{ code_verifier: pkce().verifier }, { redirect_uri: `${RELEASES_CLIENT.redirect_uri}/` }];
    for (const overrides of wrongs) {
      const { code, verifier } = await signedIn();
      const refused = await exchange(code, verifier, overrides);
      expect({ overrides, status: refused.status, error: refused.data.error }).toEqual({ overrides, status: 400, error: 'invalid_grant' });
      expect((await exchange(code, verifier)).data.error).toBe('invalid_grant');
    }
    const { code, verifier } = await signedIn();
    const unknownClient = await exchange(code, verifier, { client_id: 'someone-else' });
    expect({ status: unknownClient.status, error: unknownClient.data.error }).toEqual({ status: 401, error: 'invalid_client' });
    // a verifier of the wrong shape is malformed (RFC 7636 §4.1)
    expect((await exchange(code, 'short')).data.error).toBe('invalid_request');
  });

  it('refuses a code used twice and revokes the tokens issued from it (RFC 6749 §4.1.2)', async () => {
    const { tenant, code, verifier } = await signedIn();
    const first = await exchange(code, verifier);
    expect(first.status).toBe(200);
    const second = await exchange(code, verifier);
    expect({ status: second.status, error: second.data.error }).toEqual({ status: 400, error: 'invalid_grant' });
    const refresh = await token({ grant_type: 'refresh_token', refresh_token: first.data.refresh_token });
    expect({ status: refresh.status, error: refresh.data.error }).toEqual({ status: 400, error: 'invalid_grant' });
    expect(await actionsOf(tenant)).toEqual(expect.arrayContaining(['authorization_code.reuse_detected:denied', 'refresh_family.revoked:success']));
  });

  it('leaves no live tokens when the same code is presented twice at once, whichever comes first', async () => {
    for (let round = 0; round < 3; round++) {
      const { code, verifier } = await signedIn();
      const answers = await Promise.all([exchange(code, verifier), exchange(code, verifier)]);
      expect(answers.filter((a) => a.status === 200).length).toBeLessThanOrEqual(1);
      for (const answer of answers.filter((a) => a.status === 200)) {
        expect((await token({ grant_type: 'refresh_token', refresh_token: answer.data.refresh_token })).data.error).toBe('invalid_grant');
      }
    }
  });

  it(`refuses an expired code (AUTHORIZATION_CODE_TTL_SEC, ${CODE_TTL_SEC} s here)`, async () => {
    const { code, verifier } = await signedIn();
    await sleep(CODE_TTL_SEC * 1000 + 500);
    const expired = await exchange(code, verifier);
    expect({ status: expired.status, error: expired.data.error }).toEqual({ status: 400, error: 'invalid_grant' });
  });
});

// last: it spends this source's login pages for a minute
describe('a flood of login pages', () => {
  it('bounds the pending requests one address can make PAS hold: 429 with Retry-After past 60 pages a minute', async () => {
    const url = authorizationUrl(pkce().challenge);
    let answer = await openLoginPage(suite, url);
    for (let i = 0; i < 70 && answer.response.status === 200; i++) answer = await openLoginPage(suite, url, answer.cookie);
    expect(answer.response.status).toBe(429);
    expect(Number(answer.response.headers['retry-after'])).toBeGreaterThan(0);
    expect(answer.response.data).toContain('<code>too_many_requests</code>');
    expect(answer.response.headers.location).toBeUndefined();
  });
});
