import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { ACR_MULTI_FACTOR, ACR_SINGLE_FACTOR, AMR, VENDOR_TENANT } from '@keyway/contracts';
import { secretOfOtpauthUri, totpAt, totpStep } from '@keyway/kit';
import { isSealed } from '@keyway/seal';
import { RELEASES_CLIENT, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { openLoginPage, PASSWORD, postLoginForm, provisionReleaseTenant, provisionTenant, rawClient } from '../helpers.ts';
import { authorizationUrl, pkce } from '../lifecycle/authorization.ts';
import { authenticatorOf, operatorLogin, provisionOperator } from '../operators/operator.ts';

// Issue 14, third bullet: the operator scope needs a second factor (TOTP, RFC 6238, or a recovery
// code), every token says how and when its holder authenticated (amr, acr, auth_time), and the
// destructive admin actions ask for a recent login with a second factor (RFC 9470 step-up). On the
// real suite: PostgreSQL, Redis, HTTPS.

/** short, so a login grows too old for a destructive action within the test */
const STEP_UP_MAX_AGE_SEC = 2;

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, stepUpMaxAgeSec: STEP_UP_MAX_AGE_SEC });
});
afterAll(() => suite?.close());

const token = (fields: Record<string, string>) => rawClient(suite, 'pas').post('/oauth2/token', form(fields), { headers: FORM });
const operatorPassword = (username: string, otp?: string) => token({ grant_type: 'password', username, password: PASSWORD, scope: 'operator', ...(otp && { otp }) });
const events = async (stream: string, action: string) => (await suite.auditor.events({ stream, action, order: 'oldest', limit: 500 })).events;
const WRONG = { error: 'invalid_grant', error_description: 'the username or password is incorrect' };

/** A fresh suspended tenant, ready to be deleted (deletion is the second, deliberate step). */
async function suspendedTenant(): Promise<string> {
  const { tenant } = await provisionTenant(suite);
  await suite.operator.suspendTenant(tenant);
  return tenant;
}

describe('operator login needs a second factor (password grant, Keyway extension `otp`)', () => {
  it('refuses the operator scope to a password alone, with the reason and a step the trail shows', async () => {
    const { email, user } = await provisionOperator(suite);
    const refused = await operatorPassword(email);
    expect({ status: refused.status, body: refused.data }).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'the operator scope requires a second factor: send otp' },
    });
    expect((await events('pas', 'mfa.required')).filter((e) => e.subject === user.id)).toHaveLength(1);
  });

  it('issues an operator token for password + TOTP: acr mfa, amr [pwd, otp, mfa], auth_time now', async () => {
    const { email, user } = await provisionOperator(suite);
    const before = Math.floor(Date.now() / 1000);
    const tokens = await operatorLogin(suite, email);
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({ sub: user.id, tid: VENDOR_TENANT, scope: 'operator', acr: ACR_MULTI_FACTOR, amr: ['pwd', 'otp', 'mfa'] });
    expect(AMR).toEqual(expect.arrayContaining(claims.amr as string[]));
    expect(claims.auth_time).toBeGreaterThanOrEqual(before);
    expect(claims.auth_time).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(decodeJwt(tokens.refresh_token)).toMatchObject({ acr: ACR_MULTI_FACTOR, amr: ['pwd', 'otp', 'mfa'], auth_time: claims.auth_time });
    expect((await events('idp', 'mfa.succeeded')).filter((e) => e.subject === user.id).map((e) => e.detail?.method)).toEqual(['totp']);
  });

  it('accepts a TOTP code once: the same code again is the same invalid_grant as a wrong password, counted and recorded', async () => {
    const { email, user, authenticator } = await provisionOperator(suite);
    const code = totpAt(authenticator.secret, totpStep(Date.now()));
    expect((await operatorPassword(email, code)).status).toBe(200);
    const again = await operatorPassword(email, code);
    expect({ status: again.status, body: again.data }).toEqual({ status: 400, body: WRONG });
    // an earlier step than the one accepted is spent too (RFC 6238 §5.2)
    const earlier = await operatorPassword(email, totpAt(authenticator.secret, totpStep(Date.now()) - 1));
    expect(earlier.status).toBe(400);
    const wrong = await operatorPassword(email, '000000' === code ? '111111' : '000000');
    expect(wrong.data).toEqual(WRONG);
    const failed = (await events('idp', 'mfa.failed')).filter((e) => e.subject === user.id).map((e) => e.reason);
    expect(failed).toEqual(expect.arrayContaining(['code_reused']));
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect((await events('pas', 'login.failed')).filter((e) => e.detail?.username === email).length).toBeGreaterThanOrEqual(3);
  });

  it('accepts each recovery code once, in place of a TOTP code', async () => {
    const { email, authenticator } = await provisionOperator(suite);
    const recovery = authenticator.takeRecoveryCode();
    const first = await operatorPassword(email, recovery.toUpperCase());
    expect(first.status).toBe(200);
    expect(decodeJwt(first.data.access_token)).toMatchObject({ acr: ACR_MULTI_FACTOR, amr: ['pwd', 'otp', 'mfa'] });
    const second = await operatorPassword(email, recovery);
    expect({ status: second.status, body: second.data }).toEqual({ status: 400, body: WRONG });
  });

  it('leaves the feed scope as it was: a customer without a second factor logs in with a password (acr 1fa, amr [pwd])', async () => {
    const { email } = await provisionTenant(suite);
    const tokens = await token({ grant_type: 'password', username: email, password: PASSWORD });
    expect(tokens.status).toBe(200);
    expect(decodeJwt(tokens.data.access_token)).toMatchObject({ acr: ACR_SINGLE_FACTOR, amr: ['pwd'] });
    // a code sent for an account without a factor is a wrong credential, not ignored
    expect((await token({ grant_type: 'password', username: email, password: PASSWORD, otp: '123456' })).data).toEqual(WRONG);
  });

  it('keeps amr, acr and auth_time across refreshes: a refresh is not a new authentication', async () => {
    const { email } = await provisionOperator(suite);
    const tokens = await operatorLogin(suite, email);
    const first = decodeJwt(tokens.access_token);
    await sleep(1100);
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(refreshed.status).toBe(200);
    const next = decodeJwt(refreshed.data.access_token);
    expect(next.iat).toBeGreaterThan(first.iat as number);
    expect(next).toMatchObject({ acr: first.acr, amr: first.amr, auth_time: first.auth_time });
  });
});

describe('TOTP enrolment (POST /v1/mfa/totp, `keyway mfa enroll`)', () => {
  it('enrols the first factor on trust, replaces it only with the current one: a password thief cannot take it over', async () => {
    const { email, user } = await provisionTenant(suite);
    const enrolment = await suite.pas.enrolTotp(email, PASSWORD);
    expect(enrolment.otpauth_uri).toMatch(/^otpauth:\/\/totp\/Keyway:.+\?secret=[A-Z2-7]+&issuer=Keyway&algorithm=SHA1&digits=6&period=30$/);
    expect(enrolment.recovery_codes).toHaveLength(10);
    expect(new Set(enrolment.recovery_codes).size).toBe(10);
    expect(enrolment.replaced).toBe(false);

    const enrol = (fields: Record<string, string>) => rawClient(suite, 'pas').post('/v1/mfa/totp', form({ username: email, password: PASSWORD, ...fields }), { headers: FORM });
    const thief = await enrol({});
    expect(thief.status).toBe(400);
    expect(thief.data).toEqual({ error: 'invalid_grant', error_description: 'a second factor is enrolled: send a current code (otp) or a recovery code to replace it' });
    expect((await enrol({ otp: '999999' })).data.error).toBe('invalid_grant');
    expect((await enrol({ password: 'not the password at all', otp: enrolment.recovery_codes[0]! })).data).toEqual({
      error: 'invalid_grant',
      error_description: 'the username, password or code is incorrect',
    });

    const owner = await enrol({ otp: totpAt(secretOfOtpauthUri(enrolment.otpauth_uri), totpStep(Date.now())) });
    expect(owner.status).toBe(200);
    expect(owner.headers['cache-control']).toBe('no-store');
    expect(owner.data.replaced).toBe(true);
    // the old factor's recovery codes are gone with it
    expect((await token({ grant_type: 'password', username: email, password: PASSWORD, otp: enrolment.recovery_codes[1]! })).data).toEqual(WRONG);
    const enrolled = (await events('idp', 'mfa.enrolled')).filter((e) => e.subject === user.id);
    expect(enrolled.map((e) => e.detail?.replaced)).toEqual(['false', 'true']);
    // the trail holds no secret or code
    expect(JSON.stringify(enrolled)).not.toContain(enrolment.secret);
    // at rest: the secret sealed under the KEK (bound to the account), the recovery codes as hashes only
    const stored = JSON.parse((await suite.records.idp.get(`mfa:totp:${user.id}`))!) as { secret: string; recovery: string[] };
    expect(isSealed(stored.secret)).toBe(true);
    const raw = JSON.stringify(stored);
    expect(raw).not.toContain(owner.data.secret);
    expect(raw).not.toContain(secretOfOtpauthUri(owner.data.otpauth_uri).toString('hex'));
    expect(raw).not.toContain(secretOfOtpauthUri(owner.data.otpauth_uri).toString('base64'));
    for (const code of owner.data.recovery_codes as string[]) expect(raw).not.toContain(code.replaceAll('-', ''));
    expect(stored.recovery).toHaveLength(10);
  });
});

describe('step-up for destructive admin actions (RFC 9470)', () => {
  it('refuses a tenant delete with a login older than STEP_UP_MAX_AGE_SEC (401 and the challenge); a fresh login deletes', async () => {
    const { email, user } = await provisionOperator(suite);
    const old = await operatorLogin(suite, email);
    const tenant = await suspendedTenant();
    await sleep((STEP_UP_MAX_AGE_SEC + 1.2) * 1000);
    const entitlement = (accessToken: string) => rawClient(suite, 'entitlement').delete(`/v1/tenants/${tenant}`, { headers: { authorization: `Bearer ${accessToken}` } });

    const refused = await entitlement(old.access_token);
    expect(refused.status).toBe(401);
    expect(refused.data).toEqual({ error: 'insufficient_user_authentication', error_description: `this action requires a login with a second factor within the last ${STEP_UP_MAX_AGE_SEC} seconds` });
    const challenge = refused.headers['www-authenticate'] as string;
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain('error="insufficient_user_authentication"');
    expect(challenge).toContain(`acr_values="${ACR_MULTI_FACTOR}"`);
    expect(challenge).toContain(`max_age=${STEP_UP_MAX_AGE_SEC}`);
    // still an operator for everything else
    expect((await rawClient(suite, 'entitlement').get(`/v1/tenants/${tenant}`, { headers: { authorization: `Bearer ${old.access_token}` } })).status).toBe(200);
    // a refresh does not make the login recent
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: old.refresh_token });
    expect((await entitlement(refreshed.data.access_token)).status).toBe(401);
    expect((await events('entitlement', 'step_up.refused')).filter((e) => e.subject === user.id).map((e) => e.reason)).toEqual(['max_age', 'max_age']);

    const fresh = await operatorLogin(suite, email);
    expect((await entitlement(fresh.access_token)).status).toBe(204);
  });

  it('asks the same of PAS signing-key rotation and PAC SAS key rotation; the operator certificate (automation) is not asked', async () => {
    const { email } = await provisionOperator(suite);
    const old = await operatorLogin(suite, email);
    const { tenant } = await provisionTenant(suite);
    // PAC has the tenant's keys once someone logged in to a feed of it
    const customer = await provisionTenant(suite);
    await suite.pac.sas({ refresh_token: (await suite.pas.password(customer.email, PASSWORD)).refresh_token });
    await sleep((STEP_UP_MAX_AGE_SEC + 1.2) * 1000);
    const bearer = (accessToken: string) => ({ headers: { authorization: `Bearer ${accessToken}` } });

    const pas = await rawClient(suite, 'pas').post('/admin/v1/signing-keys/rotate', undefined, bearer(old.access_token));
    expect({ status: pas.status, error: pas.data.error }).toEqual({ status: 401, error: 'insufficient_user_authentication' });
    expect(pas.headers['www-authenticate']).toContain(`max_age=${STEP_UP_MAX_AGE_SEC}`);
    // listing the keys is not destructive
    expect((await rawClient(suite, 'pas').get('/admin/v1/signing-keys', bearer(old.access_token))).status).toBe(200);
    const pac = await rawClient(suite, 'pac').post(`/admin/v1/tenants/${customer.tenant}/sas-keys/rotate`, { key: 'secondary' }, bearer(old.access_token));
    expect({ status: pac.status, error: pac.data.error }).toEqual({ status: 401, error: 'insufficient_user_authentication' });

    const fresh = await operatorLogin(suite, email);
    expect((await rawClient(suite, 'pac').post(`/admin/v1/tenants/${customer.tenant}/sas-keys/rotate`, { key: 'secondary' }, bearer(fresh.access_token))).status).toBe(200);
    // automation: the operator certificate is a separate credential, not a person's login
    expect((await rawClient(suite, 'pac', 'operator').post(`/admin/v1/tenants/${customer.tenant}/sas-keys/rotate`, { key: 'secondary' })).status).toBe(200);
    await suite.operator.suspendTenant(tenant);
    expect((await rawClient(suite, 'entitlement', 'operator').delete(`/v1/tenants/${tenant}`)).status).toBe(204);
  });
});

describe('the login page asks for the code after a correct password (POST /oauth2/login, then /oauth2/login/otp)', () => {
  it('shows the code page, refuses a wrong code with the page again, redirects with a code for the right one (amr mfa)', async () => {
    const person = await provisionReleaseTenant(suite);
    const enrolment = await suite.pas.enrolTotp(person.email, PASSWORD);
    const secret = secretOfOtpauthUri(enrolment.otpauth_uri);
    const { verifier, challenge } = pkce();
    const page = await openLoginPage(suite, authorizationUrl(suite.urls.pas, challenge));
    const first = await postLoginForm(suite, { request: page.request, email: person.email, password: PASSWORD }, page.cookie);
    expect(first.status).toBe(200);
    expect(first.data).toContain('action="/oauth2/login/otp"');
    expect(first.data).toContain('autocomplete="one-time-code"');
    // the code page carries the pending request only, never the password
    expect(first.data).not.toContain(PASSWORD);

    const otp = (fields: Record<string, string>, cookie = page.cookie) =>
      rawClient(suite, 'pas').post<string>('/oauth2/login/otp', new URLSearchParams({ request: page.request, ...fields }).toString(), {
        headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', cookie },
        responseType: 'text',
      });
    const wrong = await otp({ otp: '000000' === totpAt(secret, totpStep(Date.now())) ? '111111' : '000000' });
    expect(wrong.status).toBe(400);
    expect(wrong.data).toContain('The code is incorrect or has been used already.');
    expect(wrong.data).toContain('action="/oauth2/login/otp"');
    // another browser (no binding cookie) cannot finish the sign-in
    expect((await otp({ otp: totpAt(secret, totpStep(Date.now())) }, '')).status).toBe(400);

    const right = await otp({ otp: totpAt(secret, totpStep(Date.now())) });
    expect(right.status).toBe(303);
    const callback = new URL(right.headers.location as string);
    const code = callback.searchParams.get('code');
    expect(code).toEqual(expect.any(String));
    const tokens = await token({ grant_type: 'authorization_code', code: code!, redirect_uri: RELEASES_CLIENT.redirect_uri, client_id: RELEASES_CLIENT.client_id, code_verifier: verifier });
    expect(tokens.status).toBe(200);
    expect(decodeJwt(tokens.data.access_token)).toMatchObject({ sub: person.user.id, acr: ACR_MULTI_FACTOR, amr: ['pwd', 'otp', 'mfa'] });
    expect((await events('pas', 'mfa.challenged')).filter((e) => e.subject === person.user.id)).toHaveLength(1);
  });

  it('signs a person without a second factor in at once (no code page)', async () => {
    const person = await provisionReleaseTenant(suite);
    const page = await openLoginPage(suite, authorizationUrl(suite.urls.pas, pkce().challenge));
    const answer = await postLoginForm(suite, { request: page.request, email: person.email, password: PASSWORD }, page.cookie);
    expect(answer.status).toBe(303);
  });

  it('keeps the authenticator helper honest: every code it hands out is accepted', async () => {
    const { email } = await provisionOperator(suite);
    for (let i = 0; i < 5; i++) expect((await operatorLogin(suite, email)).scope).toBe('operator');
    expect(authenticatorOf(email)).toBeDefined();
  });
});
