import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '@keyway/kit';
import { createMemoryStore } from '@keyway/store';
import { connectTestDatabase, type TestDatabaseConnections } from '@keyway/testkit';
import { refusalAggregator } from './aggregate.ts';
import { createAuditLog } from './audited.ts';
import { queryEvents } from './query.ts';

let db: TestDatabaseConnections;
beforeAll(async () => {
  db = await connectTestDatabase();
});
afterAll(() => db?.close());
beforeEach(() => db.admin.query('TRUNCATE keyway_audit.events'));

describe('refusalAggregator', () => {
  it('writes one event per key and closed window, with the total and the count per reason; at most maxKeysPerWindow + 1', async () => {
    let clock = Date.parse('2030-01-01T00:00:00Z');
    const now = () => clock;
    const log = createAuditLog({ db: db.as('pac'), store: createMemoryStore({ prefix: `pac:${randomUUID()}:`, now }), service: 'pac', logger: silentLogger, now });
    const aggregator = refusalAggregator({
      log,
      store: createMemoryStore({ prefix: 'pac:', now }),
      logger: silentLogger,
      action: 'refusals.aggregated',
      keyField: 'sourceAddress',
      windowMs: 60_000,
      maxKeysPerWindow: 3,
      flushEveryMs: 0,
      now,
    });
    for (let i = 0; i < 500; i++) await aggregator.count('10.0.0.1', i % 5 === 0 ? 'invalid_request' : 'invalid_token');
    for (let i = 0; i < 10; i++) await aggregator.count(`10.0.1.${i}`, 'invalid_token');
    // the window is still open: nothing written yet
    expect(await aggregator.flush()).toBe(0);
    clock += 60_000;
    expect(await aggregator.flush()).toBe(4);
    // another instance (or a second flush) finds nothing left to write
    expect(await aggregator.flush()).toBe(0);
    const { events } = await queryEvents(db.as('audit'), { action: 'refusals.aggregated', limit: 100, order: 'oldest' });
    expect(events).toHaveLength(4);
    const first = events.find((e) => e.sourceAddress === '10.0.0.1');
    expect(first).toMatchObject({
      service: 'pac',
      outcome: 'denied',
      reason: 'mixed',
      detail: { count: '500', reasons: 'invalid_request=100,invalid_token=400', window_start: '2030-01-01T00:00:00.000Z' },
    });
    const overflow = events.find((e) => e.sourceAddress === undefined);
    expect(overflow?.detail).toMatchObject({ count: '8', reasons: 'invalid_token=8' });
    expect(events.reduce((sum, e) => sum + Number(e.detail?.count), 0)).toBe(510);
  });
});

describe('recordBounded: the noise budget of a stream', () => {
  it('records subjectless refusals up to the budget per window, then counts them: one audit.noise_suppressed event per source when the window has closed', async () => {
    let clock = Date.parse('2030-01-01T00:00:00Z');
    const now = () => clock;
    const store = createMemoryStore({ prefix: `audit:${randomUUID()}:`, now });
    const log = createAuditLog({ db: db.as('pas'), store, service: 'pas', logger: silentLogger, now, noiseBudget: { events: 10, windowMs: 60_000 } });
    for (let i = 0; i < 1000; i++) await log.recordBounded({ action: 'login.failed', outcome: 'denied', reason: 'invalid_grant', sourceAddress: `10.0.${i % 4}.1` });
    expect((await queryEvents(db.as('audit'), { action: 'login.failed', limit: 500 })).events).toHaveLength(10);
    // the next window: its first refusals are recorded again, and the closed window's count is written
    clock += 60_000;
    await log.recordBounded({ action: 'login.failed', outcome: 'denied', reason: 'invalid_grant', sourceAddress: '10.0.9.1' });
    const written = (await queryEvents(db.as('audit'), { action: 'audit.noise_suppressed', limit: 100 })).events;
    expect(written).toHaveLength(4);
    expect(written.reduce((sum, e) => sum + Number(e.detail?.count), 0)).toBe(990);
    expect((await queryEvents(db.as('audit'), { action: 'login.failed', limit: 500 })).events).toHaveLength(11);
  });
});
