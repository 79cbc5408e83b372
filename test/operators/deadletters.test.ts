import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { apiRefusal, feedWithBatches } from '../helpers.ts';

/**
 * Issue 16: an operator resubmits a subscription's dead letters at the entitlement service, which
 * passes it on to the topic service over mTLS and records it in its own trail under the operator's
 * name; the tenant's own resubmit (SAS) is recorded in the topic service's trail.
 */
let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, topic: { subscriptionCacheSec: 0 } });
}, 120_000);
afterAll(async () => {
  await suite?.close();
});

/** A feed whose `count` batches were each received and dead-lettered (SiemDown) right after being published. */
const feedWithDeadLetters = (count: number, subscription = 'default') =>
  feedWithBatches(suite, count, {
    subscription,
    afterPublish: async (f) => {
      const m = (await f.receive(5))!;
      await suite.topic.deadLetterMessage(f.key, f.tenant, f.feed, f.subscription, m.message_id, m.lock_token, { reason: 'SiemDown', description: 'index unavailable' });
    },
  });

describe('dead letters resubmitted by an operator and by the tenant (issue 16)', { timeout: 60_000 }, () => {
  it('the operator route moves them back, oldest first, and the entitlement trail records who, what and how many', async () => {
    const f = await feedWithDeadLetters(3, 'siem');
    expect(await suite.operator.resubmitDeadLetters(f.tenant, f.feed, 'siem', 2)).toBe(2);
    const first = await f.receive(5);
    const second = await f.receive(5);
    expect([first?.message_id, second?.message_id]).toEqual(f.ids.slice(0, 2));
    expect(first).toMatchObject({ delivery_count: 1 });
    expect(first).not.toHaveProperty('dead_letter_reason');
    expect(await suite.topic.deadLetter.receive(f.key, f.tenant, f.feed, 'siem', 5)).toMatchObject({
      message_id: f.ids[2],
      dead_letter_reason: 'SiemDown',
      dead_letter_error_description: 'index unavailable',
    });

    const { events } = await suite.auditor.events({ stream: 'entitlement', tenant: f.tenant, action: 'deadletters.resubmitted' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: 'success', clientId: expect.any(String), detail: { actor: 'operator_certificate', feed: f.feed, subscription: 'siem', max: '2', count: '2' } });
    // the topic service records the tenant's own resubmits only
    expect((await suite.auditor.events({ stream: 'topic', tenant: f.tenant })).events).toEqual([]);
  });

  it('the tenant’s resubmit (SAS listen) is recorded in the topic service’s trail with the key id', async () => {
    const f = await feedWithDeadLetters(1);
    expect(await suite.topic.deadLetter.resubmit(f.key, f.tenant, f.feed, 'default')).toBe(1);
    expect(await f.receive(5)).toMatchObject({ message_id: f.ids[0], delivery_count: 1 });
    const { events } = await suite.auditor.events({ stream: 'topic', tenant: f.tenant, action: 'deadletters.resubmitted' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ service: 'topic', outcome: 'success', tokenId: expect.any(String), detail: { topic: f.feed, subscription: 'default', count: '1', max: '100' } });
  });

  it('refuses a tenant, feed or subscription that does not exist (404) and a bad max (400), moving nothing and recording nothing', async () => {
    const f = await feedWithDeadLetters(1);
    expect(await apiRefusal(suite.operator.resubmitDeadLetters('t-nobody', f.feed, 'default'))).toEqual({ status: 404, code: 'not_found' });
    expect(await apiRefusal(suite.operator.resubmitDeadLetters(f.tenant, 'dns-logs', 'default'))).toEqual({ status: 404, code: 'not_found' });
    expect(await apiRefusal(suite.operator.resubmitDeadLetters(f.tenant, f.feed, 'unlisted'))).toEqual({ status: 404, code: 'not_found' });
    expect(await apiRefusal(suite.operator.resubmitDeadLetters(f.tenant, f.feed, 'default', 0))).toMatchObject({ status: 400 });
    expect(await f.receive(0)).toBeNull();
    expect((await suite.auditor.events({ stream: 'entitlement', tenant: f.tenant, action: 'deadletters.resubmitted' })).events).toEqual([]);
  });
});
