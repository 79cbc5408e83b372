import { setTimeout as sleep } from 'node:timers/promises';
import { metrics } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

/**
 * The security counters through @opentelemetry/api, read the way an OpenTelemetry SDK reads them: a
 * MeterProvider registered globally before the services start (their instruments are made at app
 * creation), cumulative sums exported to memory on demand.
 */
const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
const provider = new MeterProvider({ readers: [reader] });

/** The value of a counter's data point with exactly these attributes (0 when there is none). */
async function counter(name: string, attributes: Record<string, string>): Promise<number> {
  await reader.forceFlush();
  const latest = exporter.getMetrics().at(-1);
  const points = (latest?.scopeMetrics ?? []).flatMap((scope) => scope.metrics).flatMap((m) => (m.descriptor.name === name && m.dataPointType === DataPointType.SUM ? m.dataPoints : []));
  const same = (a: Record<string, unknown>) => Object.keys(a).length === Object.keys(attributes).length && Object.entries(attributes).every(([k, v]) => a[k] === v);
  return points.filter((p) => same(p.attributes)).reduce((sum, p) => sum + p.value, 0);
}

/** Polls a counter until it reaches `value` (change events are followed asynchronously). */
async function eventually(name: string, attributes: Record<string, string>, value: number): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const current = await counter(name, attributes);
    if (current >= value || Date.now() > deadline) return current;
    await sleep(100);
  }
}

describe('security metrics: issued, refreshed, revoked, minted, denied, by tenant and outcome', () => {
  let suite: Suite;
  beforeAll(async () => {
    // a provider another test file in this worker registered would otherwise win
    metrics.disable();
    expect(metrics.setGlobalMeterProvider(provider)).toBe(true);
    suite = await startSuite();
  });
  afterAll(async () => {
    await suite?.close();
    await provider.shutdown();
    metrics.disable();
  });

  it('counts every outcome the trail records, with the same attributes everywhere', async () => {
    const t = await provisionTenant(suite);
    const readOnly = await suite.operator.createUser(t.tenant, { email: `reader@${t.tenant}.example`, password: PASSWORD, roles: ['downloader'] });
    const pas = rawClient(suite, 'pas');
    const login = (username: string, password = PASSWORD) => pas.post('/oauth2/token', form({ grant_type: 'password', username, password }), { headers: FORM });

    const first = (await login(t.email)).data;
    await login(t.email);
    const refreshed = await suite.pas.refresh(first.refresh_token);
    expect((await login(t.email, 'not the password at all')).status).toBe(400);
    expect((await login(readOnly.email)).status).toBe(403);
    await suite.pac.sas({ refresh_token: refreshed.refresh_token, rights: 'listen' });
    await suite.pac.sas({ refresh_token: refreshed.refresh_token, rights: 'listen-send' });
    expect((await rawClient(suite, 'pac').post('/v1/sas', { refresh_token: 'not-a-token', rights: 'listen' })).status).toBe(401);
    await suite.pas.revoke(first.access_token, 'access_token');

    expect(await counter('keyway.tokens.issued', { tenant: t.tenant, grant_type: 'password', outcome: 'success' })).toBe(2);
    expect(await counter('keyway.tokens.issued', { tenant: t.tenant, grant_type: 'password', outcome: 'denied' })).toBe(1);
    // a failed login has no tenant: the name tried is not trusted to name one
    expect(await counter('keyway.tokens.issued', { grant_type: 'password', outcome: 'denied' })).toBe(1);
    expect(await counter('keyway.tokens.refreshed', { tenant: t.tenant, outcome: 'success' })).toBe(1);
    expect(await counter('keyway.sas_keys.minted', { tenant: t.tenant, rights: 'listen', outcome: 'success' })).toBe(1);
    expect(await counter('keyway.sas_keys.minted', { tenant: t.tenant, rights: 'listen-send', outcome: 'success' })).toBe(1);
    expect(await counter('keyway.sas_keys.minted', { rights: 'listen', outcome: 'denied' })).toBe(1);
    expect(await counter('keyway.denials', { service: 'pas', action: 'login.failed', reason: 'invalid_grant' })).toBe(1);
    expect(await counter('keyway.denials', { service: 'pas', action: 'authorization.denied', tenant: t.tenant, reason: 'role_missing' })).toBe(1);
    expect(await counter('keyway.denials', { service: 'entitlement', action: 'authorization.denied', tenant: t.tenant, reason: 'role_missing' })).toBe(1);
    expect(await counter('keyway.denials', { service: 'pac', action: 'sas_key.denied', reason: 'invalid_token' })).toBe(1);
    // RFC 7009: the access token's family (the refreshed pair) is revoked
    expect(await counter('keyway.tokens.revoked', { tenant: t.tenant, reason: 'client_revocation' })).toBe(1);
    // and with it the two SAS keys minted from that family (PAS announces the family, PAC revokes its keys)
    expect(await eventually('keyway.sas_keys.revoked', { tenant: t.tenant, reason: 'family.revoked' }, 2)).toBe(2);

    // a removal revokes the user's other family within seconds (strict mode); its SAS keys were revoked already
    await suite.operator.deleteUser(t.tenant, t.user.id);
    expect(await eventually('keyway.tokens.revoked', { tenant: t.tenant, reason: 'user.removed' }, 1)).toBe(1);

    // and the audit package's own count agrees with the trail
    expect(await counter('keyway.audit.events', { service: 'pas', action: 'token.issued', outcome: 'success' })).toBe(2);
    expect(await counter('keyway.audit.events', { service: 'pac', action: 'sas_key.minted', outcome: 'success' })).toBe(2);
  });
});
