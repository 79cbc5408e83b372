import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM } from '@keyway/clients';
import { auditRoutes, entitlementRoutes, idpRoutes, OPERATOR_PROOF_HEADER, pacRoutes, pasRoutes, type Route, topicRoutes, VENDOR_TENANT } from '@keyway/contracts';
import { INTERNAL_APIS } from '@keyway/kit';
import { PKI_NAMES, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';
import { operatorLogin, operatorOtp, operatorSession, provisionOperator } from '../operators/operator.ts';

/**
 * The mTLS access matrix as documented (README, "What a stolen service certificate still allows").
 * Changing who may call an internal API means changing this table, the README and the route's declaration together.
 */
const DOCUMENTED = {
  idp: {
    'POST /v1/credentials/password/verify': ['pas'],
    'POST /v1/credentials/otp/verify': ['pas'],
    'POST /v1/credentials/totp': ['pas'],
    'POST /v1/credentials/assertion/verify': ['pas'],
    'POST /v1/credentials/ssh-key/verify': ['releases'],
    'PUT /v1/credentials/:sub': ['entitlement'],
    'DELETE /v1/credentials/:sub': ['entitlement'],
    'PUT /v1/credentials/:sub/keys/:kid': ['entitlement'],
    'DELETE /v1/credentials/:sub/keys/:kid': ['entitlement'],
    'POST /v1/passkeys/registration/options': ['pas'],
    'POST /v1/passkeys/registration/verify': ['pas'],
    'POST /v1/passkeys/authentication/options': ['pas'],
    'POST /v1/passkeys/authentication/verify': ['pas'],
  },
  entitlement: {
    'POST /v1/authorize': ['pas', 'pac', 'releases'],
    'GET /internal/v1/tenants/:tenant/feeds/:feed/subscriptions': ['topic'],
    'GET /internal/v1/tenants/:tenant/feeds/:feed': ['audit'],
  },
  pas: { 'POST /oauth2/introspect': ['pac', 'entitlement', 'audit', 'releases'], 'POST /internal/v1/ssh/host-certificates': ['releases'] },
  pac: {
    'POST /internal/v1/sas-keys/verify': ['topic'],
    'GET /internal/v1/sas-keys/:keyId': ['topic'],
  },
  topic: {
    'POST /internal/v1/tenants/:tenant/topics/:topic/messages': ['audit'],
    'POST /internal/v1/locks/:lockToken': ['topic'],
    'PUT /internal/v1/tenants/:tenant/topics/:topic/subscriptions/:subscription': ['entitlement'],
    'POST /internal/v1/tenants/:tenant/topics/:topic/subscriptions/:subscription/$deadletterqueue/resubmit': ['entitlement'],
    'POST /internal/v1/tenants/:tenant/topics/:topic/subscriptions/:subscription/replays': ['entitlement'],
    'GET /internal/v1/tenants/:tenant/topics/:topic/subscriptions/:subscription/replays/:replayId': ['entitlement'],
    'DELETE /internal/v1/tenants/:tenant/topics/:topic/stream': ['entitlement'],
  },
};

/** Every source file of the services (not tests). */
function serviceSources(dir = 'services'): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules') return [];
    if (statSync(path).isDirectory()) return serviceSources(path);
    return path.endsWith('.ts') && !path.endsWith('.test.ts') ? [path] : [];
  });
}

describe('the mTLS access matrix is exactly what is documented', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL });
  });
  afterAll(() => suite?.close());

  it('INTERNAL_APIS, read from the route declarations, is the documented table; no service guards a route by hand', () => {
    expect(INTERNAL_APIS).toEqual(DOCUMENTED);
    // every mTLS-only route names its callers (bindRoute guards it with them); the audit service has none
    const internal = Object.entries({ idp: idpRoutes, entitlement: entitlementRoutes, pas: pasRoutes, pac: pacRoutes, topic: topicRoutes, audit: auditRoutes }).flatMap(([service, routes]) =>
      Object.values(routes as Record<string, Route>).flatMap((route) =>
        route.security?.join() === 'mutualTLS' ? [`${service} ${route.method.toUpperCase()} ${route.path} ${route.callers?.join() ?? 'none'}`] : [],
      ),
    );
    const documented = Object.entries(DOCUMENTED).flatMap(([service, apis]) => Object.entries(apis).map(([api, callers]) => `${service} ${api.replace(/:(\w+)/g, '{$1}')} ${callers.join()}`));
    expect(internal.sort()).toEqual(documented.sort());
    for (const path of serviceSources()) {
      // a hand-written caller list would bypass the declarations
      expect(readFileSync(path, 'utf8'), path).not.toMatch(/requireService\(/);
    }
  });

  it('each internal API answers exactly the certificates the matrix lists: another is 403 access_denied, none is 401', async () => {
    const samples: Record<string, string> = { ':sub': 'u-matrix', ':kid': 'k-matrix', ':tenant': 't-matrix', ':keyId': 'key-matrix', ':feed': 'edr-events', ':topic': 'audit' };
    const refusals: string[] = [];
    for (const [service, apis] of Object.entries(DOCUMENTED)) {
      for (const [api, allowed] of Object.entries(apis)) {
        const [method, template] = api.split(' ') as [string, string];
        const path = template.replace(/:\w+/g, (p) => samples[p] ?? p);
        const form = service === 'pas';
        for (const caller of [...PKI_NAMES, undefined]) {
          // An empty body: an allowed caller is refused for its input (400/404/415), never for who it is.
          const response = await rawClient(suite, service as keyof Suite['urls'], caller).request({
            method,
            url: path,
            data: method === 'GET' || method === 'DELETE' ? undefined : form ? '' : {},
            headers: method === 'GET' || method === 'DELETE' ? {} : form ? FORM : { 'content-type': 'application/json' },
          });
          const refusedForIdentity = response.status === 401 || (response.status === 403 && response.data?.error === 'access_denied');
          const expected = caller !== undefined && allowed.includes(caller);
          if (refusedForIdentity === expected) refusals.push(`${caller ?? 'no certificate'} → ${service} ${api}: ${response.status}`);
          if (caller === undefined) expect(response.status, `${service} ${api} without a certificate`).toBe(401);
        }
      }
    }
    expect(refusals).toEqual([]);
  });
});

/**
 * Finding (issue 9, medium): the entitlement service's certificate set any user's password, operators
 * included, with no audit record. Operator accounts' credentials now change only with an operator's
 * access token as proof, and every change made through the IdP's internal API is in its trail.
 */
describe('a stolen entitlement certificate cannot take over an operator account, and what it does is recorded', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL });
  });
  afterAll(() => suite?.close());

  const idpAs = (caller: string) => rawClient(suite, 'idp', caller);
  const idpTrail = async (action: string, subject: string) => (await suite.auditor.events({ stream: 'idp', action, subject })).events;

  it('the entitlement certificate alone cannot set an operator’s password or register a key for one (403, recorded)', async () => {
    const { email, user } = await provisionOperator(suite);
    const stolen = await idpAs('entitlement').put(`/v1/credentials/${user.id}`, { sub: user.id, tenant: VENDOR_TENANT, email, password: 'attacker-chosen-password-1' });
    expect(stolen.status).toBe(403);
    expect(stolen.data).toEqual({ error: 'access_denied', error_description: expect.any(String) });
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const key = await idpAs('entitlement').put(`/v1/credentials/${user.id}/keys/attacker`, { jwk: { ...(await exportJWK(publicKey)), alg: 'ES256' } });
    expect(key.status).toBe(403);
    // the operator's password is unchanged, and the attempt names the certificate that made it
    expect((await operatorLogin(suite, email)).access_token).toBeTruthy();
    const denied = await idpTrail('credentials.set', user.id);
    expect(denied[0]).toMatchObject({
      service: 'idp',
      outcome: 'denied',
      reason: 'operator_proof_required',
      clientId: 'entitlement',
      detail: { caller_cert: 'entitlement', reason: 'no operator token' },
    });

    // a customer's access token is no proof, nor is garbage
    const t = await provisionTenant(suite);
    const customer = await suite.pas.password(t.email, PASSWORD);
    for (const proof of [customer.access_token, 'not-a-token']) {
      const refused = await idpAs('entitlement').put(
        `/v1/credentials/${user.id}`,
        { sub: user.id, tenant: VENDOR_TENANT, email, password: 'attacker-chosen-password-1' },
        { headers: { [OPERATOR_PROOF_HEADER]: proof } },
      );
      expect(refused.status).toBe(403);
    }
  });

  it('an operator signed in (bearer) resets another operator’s password: the token is forwarded as proof; the operator certificate alone cannot', async () => {
    const admin = await provisionOperator(suite);
    const target = await provisionOperator(suite);
    const session = await operatorSession(suite, admin.email);
    await session.entitlement.setPassword(VENDOR_TENANT, target.user.id, 'a-new-operator-password-2');
    expect((await suite.pas.password(target.email, 'a-new-operator-password-2', 'operator', undefined, await operatorOtp(target.email))).access_token).toBeTruthy();
    const set = await idpTrail('credentials.set', target.user.id);
    expect(set[0]).toMatchObject({ outcome: 'success', clientId: 'entitlement', detail: { caller_cert: 'entitlement', login_set: 'password', operator: admin.user.id } });

    const byCertificate = await rawClient(suite, 'entitlement', 'operator').put(`/v1/tenants/${VENDOR_TENANT}/users/${target.user.id}/password`, { password: 'yet-another-password-3' });
    expect(byCertificate.status).toBe(403);
    expect(byCertificate.data.error).toBe('access_denied');
  });

  it('every credential change through the internal API is in the IdP’s trail with the calling certificate', async () => {
    const t = await provisionTenant(suite);
    const created = await idpTrail('credentials.set', t.user.id);
    expect(created[0]).toMatchObject({ outcome: 'success', tenant: t.tenant, clientId: 'entitlement', detail: { created: 'true', login_set: 'password' } });
    // a customer's password: still possible with the certificate alone (the documented limit), but recorded
    expect((await idpAs('entitlement').put(`/v1/credentials/${t.user.id}`, { sub: t.user.id, tenant: t.tenant, email: t.email, password: 'changed-by-cert-4' })).status).toBe(200);
    expect((await idpTrail('credentials.set', t.user.id))[0]).toMatchObject({ detail: { created: 'false', login_set: 'password', caller_cert: 'entitlement' } });

    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    await suite.operator.registerKey(t.tenant, t.user.id, 'k1', { ...(await exportJWK(publicKey)), alg: 'ES256' });
    await suite.operator.removeKey(t.tenant, t.user.id, 'k1');
    await suite.operator.deleteUser(t.tenant, t.user.id);
    expect((await idpTrail('client_key.registered', t.user.id))[0]).toMatchObject({ outcome: 'success', clientId: 'entitlement', detail: { kid: 'k1' } });
    expect((await idpTrail('client_key.removed', t.user.id))[0]).toMatchObject({ outcome: 'success', clientId: 'entitlement', detail: { kid: 'k1' } });
    expect((await idpTrail('credentials.removed', t.user.id))[0]).toMatchObject({ outcome: 'success', tenant: t.tenant, clientId: 'entitlement', detail: { existed: 'true' } });
    // no secret reaches the trail
    const all = JSON.stringify((await suite.auditor.events({ stream: 'idp', subject: t.user.id })).events);
    expect(all).not.toContain('changed-by-cert-4');
    expect(all).not.toContain(PASSWORD);
  });
});
