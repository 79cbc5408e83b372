import { openPostgres } from '@keyway/db';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AccessDenied, InvalidRequest, InvalidToken, silentLogger } from '@keyway/kit';
import { createMemoryStore } from '@keyway/store';
import { connectTestDatabase, type TestDatabaseConnections } from '@keyway/testkit';
import { createAuditLog } from './audited.ts';
import { readSince } from './export.ts';
import { noiseGate } from './noise-gate.ts';
import { securityMetrics } from './security-metrics.ts';
import { audited } from './step.ts';

let db: TestDatabaseConnections;
beforeAll(async () => {
  db = await connectTestDatabase();
});
afterAll(() => db?.close());
beforeEach(() => db.admin.query('TRUNCATE keyway_audit.events'));

function trail(database = db.as('pas')) {
  const audit = createAuditLog({ db: database, store: createMemoryStore({ prefix: 'pas:' }), service: 'pas', logger: silentLogger });
  const counted: Array<[string, Record<string, string>]> = [];
  const meter = { createCounter: (name: string) => ({ add: (_n: number, attrs: Record<string, string>) => void counted.push([name, attrs]) }) } as unknown as Parameters<typeof securityMetrics>[0];
  const events = async () => (await readSince(db.as('audit'), 'pas', 0)).events;
  return { audit, metrics: securityMetrics(meter), counted, events };
}

describe('audited(): the one audited step', () => {
  it('counts each outcome once, and every recorded denial in keyway.denials', async () => {
    const t = trail();
    const outcomes: string[] = [];
    const spec = { action: 'sas_key.minted', count: (outcome: string) => void outcomes.push(outcome) };
    await audited(t, { ...spec, fields: { subject: 'u-1', tenant: 'acme' } }, async () => 'key');
    await expect(audited(t, { ...spec, fields: { subject: 'u-1', tenant: 'acme' } }, async () => Promise.reject(new AccessDenied(undefined, 'role_missing')))).rejects.toThrow();
    await expect(audited(t, { ...spec, fields: { subject: 'u-1' } }, async () => Promise.reject(new Error('boom')))).rejects.toThrow();
    expect(outcomes).toEqual(['success', 'denied', 'failure']);
    expect(t.counted).toEqual([['keyway.denials', { service: 'pas', action: 'sas_key.denied', tenant: 'acme', reason: 'access_denied' }]]);
    expect((await t.events()).map((e) => [e.action, e.outcome])).toEqual([
      ['sas_key.minted', 'success'],
      ['sas_key.denied', 'denied'],
      ['sas_key.failed', 'failure'],
    ]);
  });

  it('a denial naming nobody goes to the noise gate; a named one within the noise budget; an authenticated caller is recorded', async () => {
    const t = trail();
    const gate = noiseGate({ log: t.audit, store: createMemoryStore({ prefix: 'pas:' }), logger: silentLogger, perSource: 10, windowMs: 60_000 });
    const noise = { gate, source: '198.51.100.1' };
    await expect(audited(t, { action: 'token.issued', noise }, async () => Promise.reject(new InvalidToken()))).rejects.toThrow();
    expect(await t.events()).toEqual([]);
    await expect(audited(t, { action: 'token.issued', noise }, async (s) => Promise.reject(s.refuse(new InvalidRequest(), 'login.failed')))).rejects.toThrow();
    await expect(audited(t, { action: 'crm.sync', authenticated: true }, async () => Promise.reject(new InvalidRequest()))).rejects.toThrow();
    expect((await t.events()).map((e) => [e.action, e.reason])).toEqual([
      ['login.failed', 'invalid_request'],
      ['crm.denied', 'invalid_request'],
    ]);
    await gate.close();
  });

  it('deny() answers a refusal; also() records what came with the outcome; refusal: false records only successes', async () => {
    const t = trail();
    const decision = await audited(t, { fields: { subject: 'u-1', tenant: 'acme' } }, async (s) => {
      s.deny('authorization.denied', 'role_missing');
      return { allow: false };
    });
    expect(decision).toEqual({ allow: false });
    await audited(t, { action: 'token.revoked', fields: { subject: 'u-1' } }, async (s) => s.also({ action: 'refresh_family.revoked', outcome: 'success', reason: 'client_revocation' }));
    await expect(audited(t, { action: 'admin.user_created', refusal: false }, async () => Promise.reject(new InvalidRequest()))).rejects.toThrow();
    expect((await t.events()).map((e) => [e.action, e.outcome, e.reason])).toEqual([
      ['authorization.denied', 'denied', 'role_missing'],
      ['token.revoked', 'success', undefined],
      ['refresh_family.revoked', 'success', 'client_revocation'],
    ]);
    expect(t.counted).toEqual([['keyway.denials', { service: 'pas', action: 'authorization.denied', tenant: 'acme', reason: 'role_missing' }]]);
  });

  it('writable: refuses (503, the trail out of reach) before acting when the trail does not take writes', async () => {
    const gone = openPostgres({ url: db.database.serviceUrl('pas') });
    const t = trail(gone);
    await gone.close();
    let acted = false;
    const err = await audited(t, { action: 'signing_key.rotated', writable: true, refusal: false }, async () => {
      acted = true;
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, code: 'temporarily_unavailable' });
    expect(acted).toBe(false);
  });
});
