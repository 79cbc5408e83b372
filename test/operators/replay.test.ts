import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topicClient } from '@keyway/clients';
import type { ReplayStatus } from '@keyway/contracts';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { apiRefusal, feedWithBatches } from '../helpers.ts';

/**
 * Issue 16: an operator replays a feed into a subscription at the entitlement service, which passes
 * it on to the topic service over mTLS and records it in its own trail under the operator's name (no
 * SAS key is signed or held by the operator).
 */
let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, topic: { subscriptionCacheSec: 0 } });
}, 120_000);
afterAll(async () => {
  await suite?.close();
});

/** A tenant whose feed holds `count` published batches, with a listen key to receive them as the tenant does. */
async function feedWithHistory(count: number, subscription = 'default') {
  const f = await feedWithBatches(suite, count, { subscription });
  const drain = async (): Promise<string[]> => {
    const received: string[] = [];
    for (;;) {
      const message = await f.receive(2);
      if (!message) return received;
      received.push(message.message_id);
      await suite.topic.complete(f.key, f.tenant, f.feed, subscription, message.message_id, message.lock_token);
    }
  };
  return { ...f, drain };
}

async function finished(f: { tenant: string; feed: string }, subscription: string, started: ReplayStatus): Promise<ReplayStatus> {
  let status = started;
  while (status.status === 'running') {
    await sleep(200);
    status = await suite.operator.replayStatus(f.tenant, f.feed, subscription, status.replay_id);
  }
  return status;
}

describe('a replay asked by an operator (issue 16)', { timeout: 60_000 }, () => {
  it('copies the retained batches into a listed subscription, its status is read through the same service, and the entitlement trail records who, where from and which replay', async () => {
    const f = await feedWithHistory(3, 'siem');
    expect(await f.drain()).toEqual(f.ids);

    const started = await suite.operator.replay(f.tenant, f.feed, 'siem', { from_time: new Date(Date.now() - 3_600_000).toISOString() });
    expect(started).toMatchObject({ tenant: f.tenant, topic: f.feed, subscription: 'siem' });
    expect(await finished(f, 'siem', started)).toMatchObject({ replay_id: started.replay_id, status: 'completed', copied: 3 });
    expect(await f.drain()).toEqual(f.ids);

    const { events } = await suite.auditor.events({ stream: 'entitlement', tenant: f.tenant, action: 'replay.requested' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      outcome: 'success',
      clientId: expect.any(String),
      detail: { actor: 'operator_certificate', feed: f.feed, subscription: 'siem', from_time: started.from_time, replay: started.replay_id },
    });
    // the topic service records the replays asked with a tenant's key only
    expect((await suite.auditor.events({ stream: 'topic', tenant: f.tenant })).events).toEqual([]);
  });

  it('replays `default` from a stream offset', async () => {
    const f = await feedWithHistory(3);
    expect(await f.drain()).toEqual(f.ids);
    const all = await finished(f, 'default', await suite.operator.replay(f.tenant, f.feed, 'default', { from_offset: 0 }));
    expect(await f.drain()).toEqual(f.ids);
    const last = await finished(f, 'default', await suite.operator.replay(f.tenant, f.feed, 'default', { from_offset: all.last_offset! }));
    expect(last).toMatchObject({ status: 'completed', copied: 1 });
    expect(await f.drain()).toEqual([f.ids[2]]);
    const { events } = await suite.auditor.events({ stream: 'entitlement', tenant: f.tenant, action: 'replay.requested' });
    expect(events.map((e) => e.detail?.from_offset).sort()).toEqual(['0', String(all.last_offset)].sort());
  });

  it('refuses a tenant, feed, subscription or replay that does not exist (404) and a bad request (400), replaying nothing and recording nothing', async () => {
    const f = await feedWithHistory(1);
    expect(await f.drain()).toEqual(f.ids);
    const from = { from_offset: 0 };
    expect(await apiRefusal(suite.operator.replay('t-nobody', f.feed, 'default', from))).toEqual({ status: 404, code: 'not_found' });
    expect(await apiRefusal(suite.operator.replay(f.tenant, 'dns-logs', 'default', from))).toEqual({ status: 404, code: 'not_found' });
    expect(await apiRefusal(suite.operator.replay(f.tenant, f.feed, 'unlisted', from))).toEqual({ status: 404, code: 'not_found' });
    expect(await apiRefusal(suite.operator.replay(f.tenant, f.feed, 'default', { from_time: new Date(Date.now() + 3_600_000).toISOString() }))).toMatchObject({ status: 400 });
    expect(await apiRefusal(suite.operator.replay(f.tenant, f.feed, 'default', { from_offset: 0, from_time: new Date().toISOString() }))).toMatchObject({ status: 400 });
    expect(await apiRefusal(suite.operator.replayStatus(f.tenant, f.feed, 'default', crypto.randomUUID()))).toEqual({ status: 404, code: 'replay_not_found' });
    expect(await apiRefusal(suite.operator.replayStatus(f.tenant, f.feed, 'unlisted', crypto.randomUUID()))).toEqual({ status: 404, code: 'not_found' });
    await sleep(500);
    expect(await f.drain()).toEqual([]);
    expect((await suite.auditor.events({ stream: 'entitlement', tenant: f.tenant, action: 'replay.requested' })).events).toEqual([]);
  });

  it('the topic service’s internal replay routes answer the entitlement service only', async () => {
    const f = await feedWithHistory(1);
    const asOperator = topicClient({ caPem: suite.pki.ca.certPem, clientCert: suite.pki.certs.operator, baseUrl: suite.urls.topic });
    expect(await apiRefusal(asOperator.replayInternal(f.tenant, f.feed, 'default', { from_offset: 0 }))).toMatchObject({ status: 403 });
    expect(await apiRefusal(asOperator.replayStatusInternal(f.tenant, f.feed, 'default', crypto.randomUUID()))).toMatchObject({ status: 403 });
  });
});
