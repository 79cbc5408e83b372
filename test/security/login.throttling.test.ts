import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';
import { operatorOtp, provisionOperator } from '../operators/operator.ts';
import { clientFrom } from './sources.ts';

/**
 * Issue 9, "No login throttling": per account+source, per account and per source limits on the
 * password grant, client assertions and the console sign-in (429 + Retry-After, one audit event per
 * window), a bounded scrypt queue at the IdP (503 fast), and the IdP's own per-account limit and record.
 */
let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL });
});
afterAll(() => suite?.close());

const attacker = () => rawClient(suite, 'pas');
const otherSource = () => clientFrom(suite, 'pas', '127.0.0.2');
const login = (client: ReturnType<typeof attacker>, username: string, password: string, scope?: string) =>
  client.post('/oauth2/token', form({ grant_type: 'password', username, password, scope }), { headers: FORM });
const events = async (action: string, stream = 'pas') => (await suite.auditor.events({ stream, action, limit: 500 })).events;

describe('login throttling (issue 9)', () => {
  it('answers 429 with Retry-After after 5 bad passwords for one account from one source; the real user from another source still logs in; one throttling event', async () => {
    const { email } = await provisionTenant(suite);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await login(attacker(), email, `guess number ${i}`)).status);
    expect(statuses.slice(0, 5)).toEqual([400, 400, 400, 400, 400]);
    expect(statuses.slice(5)).toEqual(Array(7).fill(429));

    const refused = await login(attacker(), email, PASSWORD);
    expect(refused.status).toBe(429);
    expect(refused.data).toEqual({ error: 'too_many_requests', error_description: expect.any(String) });
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);

    // The real user, from their own address, is not locked out by the attacker's guesses.
    const real = await login(otherSource(), email, PASSWORD);
    expect(real.status).toBe(200);

    // One throttling event for the 8 throttled attempts, not eight.
    const throttled = (await events('login.throttled')).filter((e) => e.detail?.username === email);
    expect(throttled).toHaveLength(1);
    expect(throttled[0]).toMatchObject({ outcome: 'denied', reason: 'login-account-source', detail: { rule: 'login-account-source', failures: '5' } });
    expect((await events('login.failed')).filter((e) => e.detail?.username === email)).toHaveLength(5);
  });

  it('guessing spread over many sources meets the looser per-account ceiling (20): the account is blocked for the rest of one window, not longer', async () => {
    const { email } = await provisionTenant(suite);
    // four addresses, five failures each: none reaches its own account+source limit's refusal
    for (let source = 1; source <= 4; source++) {
      for (let i = 0; i < 5; i++) expect((await login(clientFrom(suite, 'pas', `127.0.2.${source}`), email, `spread ${source}.${i}`)).status).toBe(400);
    }
    const blocked = await login(clientFrom(suite, 'pas', '127.0.2.9'), email, PASSWORD);
    expect(blocked.status).toBe(429);
    const retryAfter = Number(blocked.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await events('login.throttled')).filter((e) => e.detail?.username === email).map((e) => e.reason)).toEqual(['login-account']);
  });

  it('a successful login resets the failures of its source', async () => {
    const { email } = await provisionTenant(suite);
    for (let i = 0; i < 4; i++) expect((await login(attacker(), email, `typo ${i}`)).status).toBe(400);
    expect((await login(attacker(), email, PASSWORD)).status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await login(attacker(), email, `typo again ${i}`)).status).toBe(400);
  });

  it('a username that is not an email is a failed login of its source, never a 500', async () => {
    const name = `not-an-email-${randomUUID().slice(0, 8)}`;
    const response = await login(otherSource(), name, 'whatever');
    expect(response.status).toBe(400);
    expect(response.data).toEqual({ error: 'invalid_grant', error_description: 'the username or password is incorrect' });
  });

  it('throttles client assertions per claimed client: 429 after 5 forged assertions', async () => {
    const client = `u-${randomUUID()}`;
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const forged = () => `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64({ iss: client, sub: client, aud: suite.urls.pas, jti: randomUUID(), exp: Math.floor(Date.now() / 1000) + 60 })}.${'A'.repeat(86)}`;
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const response = await rawClient(suite, 'pas').post(
        '/oauth2/token',
        form({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: forged() }),
        { headers: FORM },
      );
      statuses.push(response.status);
      if (response.status === 429) expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
    expect((await events('login.throttled')).filter((e) => e.clientId === client)).toHaveLength(1);
  });

  it('throttles console sign-in by the operator’s own address (forwarded by the console, believed from it alone)', async () => {
    const { email } = await provisionOperator(suite);
    const signIn = (client: ReturnType<typeof attacker>, password: string, otp?: string) => client.post('/console/session', { email, password, otp });
    const console1 = rawClient(suite, 'entitlement');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await signIn(console1, `wrong ${i}`)).status);
    expect(statuses).toEqual([400, 400, 400, 400, 400, 429]);
    const refused = await signIn(console1, PASSWORD);
    expect(refused.status).toBe(429);
    expect(refused.data.error).toBe('too_many_requests');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Another operator machine, through the same console: not throttled by the first one's failures.
    const signedIn = await signIn(clientFrom(suite, 'entitlement', '127.0.0.3'), PASSWORD, await operatorOtp(email));
    expect(signedIn.status).toBe(200);
    // A caller other than the console cannot pick its own source with the header.
    const spoofed = await attacker().post('/oauth2/token', form({ grant_type: 'password', username: email, password: PASSWORD, scope: 'operator' }), {
      headers: { ...FORM, 'x-keyway-client-address': '10.9.8.7' },
    });
    expect(spoofed.status).toBe(429);
  });

  it('a flood of 32 concurrent bad logins answers 429/503 fast, while a real login from another source completes within 6 s (measured 0.7 s idle, 2.7-3.3 s at load average 12 on 2 cores)', async () => {
    const { email } = await provisionTenant(suite);
    const victims = await Promise.all(Array.from({ length: 4 }, () => provisionTenant(suite)));
    const started = Date.now();
    const flood = Promise.all(
      Array.from({ length: 32 }, async (_, i) => {
        const response = await login(attacker(), victims[i % victims.length]!.email, `flood ${i}`);
        return { status: response.status, ms: Date.now() - started, retryAfter: response.headers['retry-after'] };
      }),
    );
    await sleep(20);
    const realStarted = Date.now();
    const real = await login(otherSource(), email, PASSWORD);
    const realMs = Date.now() - realStarted;
    const answers = await flood;
    expect(real.status).toBe(200);
    const refusedFast = answers.filter((a) => a.status === 429 || a.status === 503);
    expect(refusedFast.length).toBeGreaterThanOrEqual(16);
    for (const a of refusedFast) expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
    for (const a of answers) expect([400, 429, 503]).toContain(a.status);
    console.info(
      `flood: ${answers.filter((a) => a.status === 400).length}×400, ${answers.filter((a) => a.status === 429).length}×429, ${answers.filter((a) => a.status === 503).length}×503, slowest ${Math.max(...answers.map((a) => a.ms))} ms; real login ${realMs} ms`,
    );
    expect(realMs).toBeLessThan(6000);
  });
});

describe('the IdP: a bounded scrypt queue, and its own per-account limit and record of failures (issue 9)', () => {
  // its own suite: a small per-account limit and a short window, so the aggregated record is seen soon
  const IDP_FAILURES = 8;
  const IDP_WINDOW_SEC = 8;
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL, limits: { idp: { failuresPerAccount: IDP_FAILURES, windowSec: IDP_WINDOW_SEC } } });
  });
  afterAll(() => suite?.close());
  const events = async (action: string) => (await suite.auditor.events({ stream: 'idp', action, limit: 500 })).events;
  const idp = () => rawClient(suite, 'idp', 'pas');
  const verify = (email: string, password: string) => idp().post('/v1/credentials/password/verify', { email, password });

  it(`refuses an account after ${IDP_FAILURES} failed verifications (429), and records them as one aggregated event`, async () => {
    const { email } = await provisionTenant(suite);
    const statuses: number[] = [];
    // two at a time (the IdP's scrypt slots), so the failures land well within one window
    for (let i = 0; i < IDP_FAILURES; i += 2) statuses.push(...(await Promise.all([verify(email, `wrong ${i}`), verify(email, `wrong ${i + 1}`)])).map((r) => r.status));
    for (let i = 0; i < 2; i++) statuses.push((await verify(email, `wrong again ${i}`)).status);
    expect(statuses.slice(0, IDP_FAILURES)).toEqual(Array(IDP_FAILURES).fill(400));
    expect(statuses.slice(IDP_FAILURES)).toEqual([429, 429]);
    // the window (IDP_WINDOW_SEC in this suite) closes, and its count is written as one event for the account
    let recorded: Awaited<ReturnType<typeof events>> = [];
    const total = () => recorded.reduce((sum, e) => sum + Number(e.detail?.count), 0);
    // aggregation windows are aligned to the clock, so the ten may fall into two of them: two events at most
    for (let i = 0; i < IDP_WINDOW_SEC * 10 && total() < IDP_FAILURES + 2; i++) {
      await sleep(250);
      recorded = (await events('credentials.verification_failed')).filter((e) => e.detail?.username === email);
    }
    expect(recorded.length).toBeGreaterThanOrEqual(1);
    expect(total()).toBe(IDP_FAILURES + 2);
    expect(recorded.length).toBeLessThanOrEqual(2);
    expect(recorded[0]).toMatchObject({ service: 'idp', outcome: 'denied' });
  }, 60_000);

  it('answers a flood of concurrent verifications 503 temporarily_unavailable with Retry-After, fast', async () => {
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const response = await verify(`nobody-${i}-${randomUUID().slice(0, 6)}@nowhere.example`, 'not the password');
        return { status: response.status, ms: Date.now() - started, body: response.data, retryAfter: response.headers['retry-after'] };
      }),
    );
    const busy = answers.filter((a) => a.status === 503);
    expect(busy.length).toBeGreaterThanOrEqual(20);
    for (const a of busy) {
      expect(a.body).toEqual({ error: 'temporarily_unavailable', error_description: expect.any(String) });
      expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    expect(answers.filter((a) => a.status !== 503).every((a) => a.status === 400)).toBe(true);
    console.info(`idp flood: ${busy.length}×503 (fastest ${Math.min(...busy.map((a) => a.ms))} ms), ${answers.length - busy.length}×400, all answered in ${Math.max(...answers.map((a) => a.ms))} ms`);
  });
});
