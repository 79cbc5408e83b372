import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, FORM, form } from '@keyway/clients';
import { POSTGRES_ADMIN_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { tcpProxy, viaProxy, type TcpProxy } from '@keyway/testkit/tcp-proxy';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

// the topic service records replays and resubmits (issue 16): its readiness follows the trail too
const AUDITED = ['pas', 'pac', 'entitlement', 'topic'] as const;

/** Polls until every audited service is ready again; how long that took. */
async function untilReady(suite: Suite, budgetMs = 15_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    const statuses = await Promise.all(AUDITED.map(async (service) => (await rawClient(suite, service).get('/readyz')).status));
    if (statuses.every((status) => status === 200)) return Date.now() - started;
    if (Date.now() - started > budgetMs) throw new Error(`not ready after ${budgetMs} ms: ${statuses.join(', ')}`);
    await sleep(200);
  }
}

/** The audit write is part of the action (style rule 10): with the audit trail's database cut off, nothing is issued. */
describe('audit fails closed: the audit trail behind a cut TCP proxy', () => {
  let proxy: TcpProxy;
  let suite: Suite;
  beforeAll(async () => {
    const target = new URL(POSTGRES_ADMIN_URL);
    proxy = await tcpProxy(target.hostname, Number(target.port || 5432));
    // Every store and every other use of the database stay direct: only the trail goes away.
    suite = await startSuite({ redisUrl: REDIS_URL, auditDatabaseUrl: (url) => viaProxy(url, proxy) });
  });
  afterAll(async () => {
    await suite?.close();
    await proxy?.cut();
  });

  it('a password grant and a SAS mint answer 503 temporarily_unavailable (an outage of the trail) with no credential, /readyz 503; all work again once restored', async () => {
    const t = await provisionTenant(suite);
    const before = await suite.pas.password(t.email, PASSWORD);
    await untilReady(suite);

    await proxy.cut();
    const login = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'password', username: t.email, password: PASSWORD }), { headers: FORM });
    expect(login.status).toBe(503);
    expect(login.data).toEqual({ error: 'temporarily_unavailable', error_description: 'a dependency is unavailable, retry later' });
    expect(login.headers['retry-after']).toBe('5');
    expect(login.headers['cache-control']).toBe('no-store');

    const sas = await rawClient(suite, 'pac').post('/v1/sas', { refresh_token: before.refresh_token, rights: 'listen' });
    expect(sas.status).toBe(503);
    expect(sas.data).toEqual({ error: 'temporarily_unavailable', error_description: 'a dependency is unavailable, retry later' });
    expect(JSON.stringify(sas.data)).not.toMatch(/SharedAccessSignature|sig=/);

    // (after the SAS request: a refresh spends the token even when its answer is lost)
    const refresh = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'refresh_token', refresh_token: before.refresh_token }), { headers: FORM });
    expect(refresh.status).toBe(503);
    expect(refresh.data.error).toBe('temporarily_unavailable');

    for (const service of AUDITED) {
      const ready = await rawClient(suite, service).get('/readyz');
      expect({ service, status: ready.status }).toEqual({ service, status: 503 });
      expect(ready.data.checks).toContainEqual({ name: 'audit', ok: false });
      expect(ready.data.checks).toContainEqual({ name: 'store', ok: true });
    }
    // The idp writes no audit events, so the trail does not make it unready.
    expect((await rawClient(suite, 'idp').get('/readyz')).status).toBe(200);

    // A denial stays a denial: the refusal is answered although it cannot be recorded.
    const wrong = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'password', username: t.email, password: 'not the password' }), { headers: FORM });
    expect(wrong.status).toBe(400);
    expect(wrong.data.error).toBe('invalid_grant');

    // An admin change is refused before it is made.
    const changed = await suite.operator.grantFeed(t.tenant, 'threat-intel').catch((err: unknown) => err);
    expect(changed).toBeInstanceOf(ApiError);
    expect(changed).toMatchObject({ status: 503, code: 'temporarily_unavailable' });

    await proxy.restore();
    await untilReady(suite);
    expect((await suite.operator.getTenant(t.tenant)).feeds).toEqual([t.feed]);

    const after = await suite.pas.password(t.email, PASSWORD);
    const key = await suite.pac.sas({ refresh_token: after.refresh_token, rights: 'listen' });
    expect(key.sas_key).toMatch(/^SharedAccessSignature /);
    expect((await suite.operator.grantFeed(t.tenant, 'threat-intel')).feeds).toEqual([t.feed, 'threat-intel']);

    // Nothing issued during the outage is in the trail, and the chains go on unbroken.
    const issued = await suite.auditor.events({ tenant: t.tenant, action: 'token.issued', order: 'oldest' });
    expect(issued.events).toHaveLength(2);
    const verified = await suite.auditor.verifyAll();
    expect(verified.ok).toBe(true);
  });
});
