import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import type { AuditEvent } from '@keyway/contracts';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';
import { clientFrom } from './sources.ts';

/**
 * Issue 9, "Unauthenticated refusals flood the audit trail": garbage tokens at PAC /v1/sas and the PAS
 * token endpoint are limited per source (429 past the limit, before any work) and aggregated into one
 * refusals.aggregated event per source and window, instead of one ~1.2 KB event each.
 */
const WINDOW_SEC = 3;
const LIMIT = 100;
const GARBAGE = 1000;
let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({
    redisUrl: REDIS_URL,
    limits: { pas: { loginLimits: { windowSec: WINDOW_SEC, refusalsPerSource: LIMIT }, refusalWindowSec: WINDOW_SEC }, pac: { refusalsPerSource: LIMIT, refusalWindowSec: WINDOW_SEC } },
  });
});
afterAll(() => suite?.close());

/** Every event a stream holds now, and the bytes they take as stored events. */
async function stream(name: string): Promise<{ events: AuditEvent[]; bytes: number }> {
  const rows = await suite.audit.query<{ event: string }>('SELECT event FROM keyway_audit.events WHERE stream = $1 ORDER BY seq', [name]);
  return { events: rows.map((r) => JSON.parse(r.event) as AuditEvent), bytes: rows.reduce((sum, r) => sum + Buffer.byteLength(r.event), 0) };
}

/** Sends `count` requests, 20 at a time; answers the statuses and how long it took. */
async function flood(count: number, send: (i: number) => Promise<{ status: number }>) {
  const started = Date.now();
  const statuses: number[] = [];
  for (let i = 0; i < count; i += 20) {
    statuses.push(...(await Promise.all(Array.from({ length: Math.min(20, count - i) }, (_, j) => send(i + j).then((r) => r.status)))));
  }
  return { statuses, ms: Date.now() - started };
}

/** Waits until the aggregated events of `source` add up to `total` refusals (their windows closed), or 3 windows pass. */
async function aggregated(name: string, source: string, total: number): Promise<AuditEvent[]> {
  let found: AuditEvent[] = [];
  for (let i = 0; i < (WINDOW_SEC * 3 * 1000) / 200; i++) {
    found = (await stream(name)).events.filter((e) => e.action === 'refusals.aggregated' && e.sourceAddress?.includes(source));
    if (found.reduce((sum, e) => sum + Number(e.detail?.count), 0) >= total) break;
    await sleep(200);
  }
  return found;
}

describe('unauthenticated refusals do not flood the audit trail (issue 9)', () => {
  /**
   * A login from a source of its own: 127.0.0.1 flooded PAS and PAC above, and may still be over the
   * refusal limit in the same window (whether it is depends on how fast the flood ran).
   */
  const loginFrom = async (address: string, email: string): Promise<{ refresh_token: string }> => {
    const answer = await clientFrom(suite, 'pas', address).post('/oauth2/token', form({ grant_type: 'password', username: email, password: PASSWORD }), { headers: FORM });
    expect(answer.status).toBe(200);
    return answer.data as { refresh_token: string };
  };

  it(`PAS: ${GARBAGE} garbage refresh tokens from one source are one aggregated event per window, 429 past ${LIMIT}; a real login from another source is audited on its own`, async () => {
    const before = await stream('pas');
    const pas = rawClient(suite, 'pas');
    const { statuses, ms } = await flood(GARBAGE, (i) => pas.post('/oauth2/token', form({ grant_type: 'refresh_token', refresh_token: `garbage-${i}` }), { headers: FORM }));
    expect(statuses.filter((s) => s === 400).length).toBeGreaterThanOrEqual(LIMIT);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 400 || s === 429)).toBe(true);
    const limited = await pas.post('/oauth2/token', form({ grant_type: 'refresh_token', refresh_token: 'more garbage' }), { headers: FORM });
    if (limited.status === 429) expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);

    const { email } = await provisionTenant(suite);
    const real = await clientFrom(suite, 'pas', '127.0.0.2').post('/oauth2/token', form({ grant_type: 'password', username: email, password: PASSWORD }), { headers: FORM });
    expect(real.status).toBe(200);

    const events = await aggregated('pas', '127.0.0.1', GARBAGE + 1);
    const after = await stream('pas');
    const written = after.events.filter((e) => !before.events.some((b) => b.seq === e.seq));
    const windows = Math.ceil(ms / (WINDOW_SEC * 1000)) + 2;
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events.length).toBeLessThanOrEqual(windows);
    expect(events.reduce((sum, e) => sum + Number(e.detail?.count), 0)).toBe(GARBAGE + 1);
    expect(events[0]).toMatchObject({ service: 'pas', outcome: 'denied' });
    expect(written.filter((e) => e.action === 'grant.failed')).toHaveLength(0);
    const issued = written.filter((e) => e.action === 'token.issued');
    expect(issued).toHaveLength(1);
    expect(issued[0]?.sourceAddress).toContain('127.0.0.2');
    console.info(
      `PAS: ${GARBAGE + 1} garbage refresh tokens in ${ms} ms → ${statuses.filter((s) => s === 429).length}×429, ${events.length} aggregated events, ${after.bytes - before.bytes} bytes written to the trail (the login included)`,
    );
  });

  it(`PAC: ${GARBAGE} garbage refresh tokens at /v1/sas from one source are one aggregated event per window, 429 past ${LIMIT}; a real mint is audited on its own`, async () => {
    const before = await stream('pac');
    const pac = rawClient(suite, 'pac');
    const { statuses, ms } = await flood(GARBAGE, (i) => pac.post('/v1/sas', { refresh_token: `garbage-${i}`, rights: 'listen' }));
    expect(statuses.filter((s) => s === 401).length).toBeGreaterThanOrEqual(LIMIT);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);

    const { email } = await provisionTenant(suite);
    const tokens = await loginFrom('127.0.0.3', email);
    const minted = await clientFrom(suite, 'pac', '127.0.0.2').post('/v1/sas', { refresh_token: tokens.refresh_token, rights: 'listen' });
    expect(minted.status).toBe(200);

    const events = await aggregated('pac', '127.0.0.1', GARBAGE);
    const after = await stream('pac');
    const written = after.events.filter((e) => !before.events.some((b) => b.seq === e.seq));
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events.length).toBeLessThanOrEqual(Math.ceil(ms / (WINDOW_SEC * 1000)) + 2);
    expect(events.reduce((sum, e) => sum + Number(e.detail?.count), 0)).toBe(GARBAGE);
    expect(written.filter((e) => e.action === 'sas_key.denied')).toHaveLength(0);
    const mint = written.filter((e) => e.action === 'sas_key.minted');
    expect(mint).toHaveLength(1);
    expect(mint[0]?.tokenId).toBe(minted.data.key_id);
    console.info(
      `PAC: ${GARBAGE} garbage refresh tokens in ${ms} ms → ${statuses.filter((s) => s === 429).length}×429, ${events.length} aggregated events, ${after.bytes - before.bytes} bytes written to the trail (the mint included)`,
    );
  });

  it('a refusal of an authenticated token stays an individual event (reuse of a spent refresh token)', async () => {
    const { email } = await provisionTenant(suite);
    const first = await loginFrom('127.0.0.3', email);
    const rotated = await clientFrom(suite, 'pas', '127.0.0.3').post('/oauth2/token', form({ grant_type: 'refresh_token', refresh_token: first.refresh_token }), { headers: FORM });
    expect(rotated.status).toBe(200);
    await sleep(2500);
    const reuse = await clientFrom(suite, 'pas', '127.0.0.4').post('/oauth2/token', form({ grant_type: 'refresh_token', refresh_token: first.refresh_token }), { headers: FORM });
    expect(reuse.status).toBe(400);
    const events = (await stream('pas')).events.filter((e) => e.action === 'refresh.reuse_detected' && e.sourceAddress?.includes('127.0.0.4'));
    expect(events).toHaveLength(1);
  });
});
