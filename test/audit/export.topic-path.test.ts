import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_FEED, topicResource, type AuditEvent } from '@keyway/contracts';
import { createLogger, silentLogger } from '@keyway/kit';
import { startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

// Issue 10: the exporter published straight into the broker, past the topic service's checks and
// quotas. It now publishes through the topic service's internal publish (audit certificate only).

let suite: Suite;
/** the audit service's warnings */
const warnings: string[] = [];
beforeAll(async () => {
  suite = await startSuite({
    auditExportIntervalMs: 200,
    // one batch a second per tenant: a round of the exporter wanting several runs into the quota
    topic: { publishRatePerSec: 1, publishBurst: 1 },
    logger: (service) => (service === 'audit' ? createLogger({ service, level: 'warn', write: (line) => warnings.push(line) }) : silentLogger),
  });
});
afterAll(() => suite?.close());

describe('the audit export publishes through the topic service', () => {
  it('the internal publish runs the SAS publish checks: a bad batch is 400, a tenant over its quota 429 with Retry-After', async () => {
    const t = await provisionTenant(suite);
    const internal = rawClient(suite, 'topic', 'audit');
    const json = { headers: { 'content-type': 'application/json' } };
    // least privilege: the audit service's certificate publishes to audit feeds only
    const otherFeed = await internal.post(`/internal/v1/tenants/${t.tenant}/topics/${t.feed}/messages`, makeBatch(t.tenant, t.feed, 1), json);
    expect(otherFeed.status).toBe(400);
    expect(otherFeed.data.error).toBe('invalid_request');
    const path = `/internal/v1/tenants/${t.tenant}/topics/${AUDIT_FEED}/messages`;
    const bad = await internal.post(path, { ...makeBatch(t.tenant, AUDIT_FEED, 1), tenant: 'someone-else' }, json);
    expect(bad.status).toBe(400);
    expect(bad.data.error).toBe('invalid_request');
    const answers = [];
    for (let seq = 2; seq < 5; seq += 1) answers.push(await internal.post(path, makeBatch(t.tenant, AUDIT_FEED, seq), json));
    expect(answers.map((a) => a.status)).toContain(429);
    expect(answers.find((a) => a.status === 429)?.headers['retry-after']).toMatch(/^\d+$/);
  });

  it('a batch refused with 429 is published again later: every event of the entitled tenant reaches its feed', async () => {
    const t = await provisionTenant(suite);
    await suite.operator.grantFeed(t.tenant, AUDIT_FEED);
    // past the round that may have read the tenant before the grant
    await sleep(1000);
    const mark = new Date().toISOString();
    // events in three streams, so a round wants several batches for the tenant at once
    for (let i = 0; i < 3; i += 1) await suite.pas.password(t.email, PASSWORD);
    const pair = await suite.pas.password(t.email, PASSWORD);
    const listen = await suite.pac.sas({ refresh_token: pair.refresh_token, resource: topicResource(suite.urls.topic, t.tenant, AUDIT_FEED), rights: 'listen' });
    await suite.operator.updateTenant(t.tenant, { name: 'Renamed' });
    const expected = (await suite.auditor.events({ tenant: t.tenant, from: mark, limit: 500 })).events.map((e) => e.id);
    expect(new Set((await suite.auditor.events({ tenant: t.tenant, from: mark, limit: 500 })).events.map((e) => e.service))).toEqual(new Set(['pas', 'pac', 'entitlement']));

    const seen = new Set<string>();
    for (const deadline = Date.now() + 30_000; !expected.every((id) => seen.has(id)); ) {
      if (Date.now() > deadline) throw new Error(`missing from the feed: ${expected.filter((id) => !seen.has(id)).length} of ${expected.length}`);
      const message = await suite.topic.receive(listen.sas_key, t.tenant, AUDIT_FEED, 'default', 1);
      if (!message) continue;
      for (const record of message.batch.records as AuditEvent[]) seen.add(record.id);
      await suite.topic.complete(listen.sas_key, t.tenant, AUDIT_FEED, 'default', message.message_id, message.lock_token);
    }
    // the quota did refuse some of them on the way: the tenant was held back, then caught up
    expect(warnings.some((line) => line.includes('audit.export_held') && line.includes('429'))).toBe(true);
  }, 60_000);
});
