import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryEvents } from '@keyway/audit';
import { createMemoryBroker } from '@keyway/broker';
import type { Batch, ReplayStatus } from '@keyway/contracts';
import { createMemoryStore } from '@keyway/store';
import { BROKERS, expectErrorBody, expectRefusal, sleep, startTopic, type Harness, type TestTopic } from '../testing/harness.ts';

/**
 * Issue 16, replay: a subscriber asks for the topic's retained batches again, from a time or a stream
 * offset, into a subscription of its own, with its listen key; the copy runs in the background and
 * its status can be asked for.
 */
describe.each(BROKERS)('replay (%s broker)', { timeout: 60_000 }, (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTopic(kind);
  });
  afterAll(() => h.close());

  const listen = (t: TestTopic) => t.sas('listen');

  const publish = async (t: TestTopic, count: number): Promise<Batch[]> => {
    const batches: Batch[] = [];
    for (let i = 0; i < count; i++) {
      const batch = t.batch();
      await h.client.publish(t.sas('send'), batch);
      batches.push(batch);
    }
    return batches;
  };

  /** receives and completes until the subscription is empty: the ids, in order */
  const drain = async (t: TestTopic, subscription: string): Promise<string[]> => {
    const ids: string[] = [];
    for (;;) {
      const message = await h.client.receive(listen(t), t.tenant, t.topic, subscription, 1);
      if (!message) return ids;
      ids.push(message.message_id);
      expect(message.delivery_count).toBe(1);
      await h.client.complete(listen(t), t.tenant, t.topic, subscription, message.message_id, message.lock_token);
    }
  };

  const finished = async (t: TestTopic, subscription: string, id: string): Promise<ReplayStatus> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const status = await h.client.replayStatus(listen(t), t.tenant, t.topic, subscription, id);
      if (status.status !== 'running' || Date.now() > deadline) return status;
      await sleep(100);
    }
  };

  /** batches published and consumed before `since`, then more after it (also consumed): the topic's history */
  const history = async (t: TestTopic, subscription: string) => {
    // received from once, so its queue exists (the entitlement service declares a listed one as it lists it)
    expect(await drain(t, subscription)).toEqual([]);
    const before = await publish(t, 3);
    expect(await drain(t, subscription)).toEqual(before.map((b) => b.id));
    // stream timestamps are the broker's: a clear gap on either side of the replay's start
    await sleep(1100);
    const since = new Date();
    await sleep(1100);
    const after = await publish(t, 4);
    expect(await drain(t, subscription)).toEqual(after.map((b) => b.id));
    return { before, since, after };
  };

  it('from a time: exactly the batches published since, in order, received from the subscription; the status completes with copied = n', async () => {
    const topic = h.newTopic(undefined, ['default', 'siem']);
    const { before, since, after } = await history(topic, 'siem');

    const response = await h.http.post(`/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/siem/replays`, { from_time: since.toISOString() }, { headers: { authorization: listen(topic) } });
    expect(response.status).toBe(202);
    const started = response.data as ReplayStatus;
    expect(started).toMatchObject({ tenant: topic.tenant, topic: topic.topic, subscription: 'siem', from_time: since.toISOString(), status: 'running', copied: 0 });
    expect(response.headers.location).toBe(`/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/siem/replays/${started.replay_id}`);

    const done = await finished(topic, 'siem', started.replay_id);
    expect(done).toMatchObject({ replay_id: started.replay_id, status: 'completed', copied: after.length, started_at: started.started_at });
    expect(done.last_offset! - done.first_offset!).toBe(after.length - 1);
    expect(Date.parse(done.finished_at!)).toBeGreaterThanOrEqual(Date.parse(done.started_at));
    expect(await drain(topic, 'siem')).toEqual(after.map((b) => b.id));
    // the topic's other subscription holds each batch once, as published: the replay went to siem only
    expect(await drain(topic, 'default')).toEqual([...before, ...after].map((b) => b.id));
    // recorded in the topic's trail, with the key's id as who (never the key)
    const { events } = await queryEvents(h.auditDb, { stream: 'topic', tenant: topic.tenant, action: 'replay.requested' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: 'success', detail: { topic: topic.topic, subscription: 'siem', replay: started.replay_id, from_time: since.toISOString() } });
    expect(events[0]?.tokenId).toMatch(/\S/);
  });

  it('from an offset (inclusive), through the client; batches published after the replay started arrive once, the usual way', async () => {
    const topic = h.newTopic();
    const { since, after } = await history(topic, 'default');
    const byTime = await h.client.replay(listen(topic), topic.tenant, topic.topic, 'default', { fromTime: since });
    const first = await finished(topic, 'default', byTime.replay_id);
    expect(first).toMatchObject({ status: 'completed', copied: 4 });
    await drain(topic, 'default');

    const fromOffset = first.first_offset! + 2;
    const byOffset = await h.client.replay(listen(topic), topic.tenant, topic.topic, 'default', { fromOffset });
    expect(byOffset).toMatchObject({ from_offset: fromOffset, status: 'running' });
    const later = await publish(topic, 1);
    expect(await finished(topic, 'default', byOffset.replay_id)).toMatchObject({ status: 'completed', copied: 2, first_offset: fromOffset, last_offset: first.last_offset });
    expect((await drain(topic, 'default')).sort()).toEqual([...after.slice(2), ...later].map((b) => b.id).sort());
  });

  it('a time older than the retention replays what is kept; nothing retained since a time copies nothing', async () => {
    const topic = h.newTopic();
    const published = await publish(topic, 2);
    await drain(topic, 'default');
    const all = await h.client.replay(listen(topic), topic.tenant, topic.topic, 'default', { fromTime: new Date(Date.now() - 30 * 86_400_000) });
    expect(await finished(topic, 'default', all.replay_id)).toMatchObject({ status: 'completed', copied: 2 });
    expect(await drain(topic, 'default')).toEqual(published.map((b) => b.id));
    await sleep(1100);
    const none = await h.client.replay(listen(topic), topic.tenant, topic.topic, 'default', { fromTime: new Date(Date.now() - 500) });
    expect(await finished(topic, 'default', none.replay_id)).toMatchObject({ status: 'completed', copied: 0 });
    expect(await drain(topic, 'default')).toEqual([]);
  });

  it('DELETE …/stream (entitlement only: the feed was removed) forgets what the topic retained: a replay from before copies nothing', async () => {
    const t = h.newTopic();
    const { since } = await history(t, 'default');
    await expectRefusal(h.as('topic').deleteStream(t.tenant, t.topic), 403, 'access_denied');
    await h.as('entitlement').deleteStream(t.tenant, t.topic);
    await h.as('entitlement').deleteStream(t.tenant, t.topic);
    const replay = await h.client.replay(listen(t), t.tenant, t.topic, 'default', { fromTime: since });
    expect(await finished(t, 'default', replay.replay_id)).toMatchObject({ status: 'completed', copied: 0 });
  });

  it('a bad body is 400: neither or both of from_time and from_offset, a negative offset, a time in the future, an unknown field', async () => {
    const topic = h.newTopic();
    const path = `/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/default/replays`;
    for (const body of [
      {},
      { from_time: new Date().toISOString(), from_offset: 0 },
      { from_offset: -1 },
      { from_time: 'yesterday' },
      { from_time: new Date(Date.now() + 3_600_000).toISOString() },
      { from_offset: 0, extra: 1 },
    ]) {
      const response = await h.http.post(path, body, { headers: { authorization: listen(topic) } });
      expectErrorBody(response, 400, 'invalid_request');
    }
    expect((await h.http.post(path, 'from_offset=0', { headers: { authorization: listen(topic), 'content-type': 'text/plain' } })).status).toBe(415);
  });

  it('needs a listen key of the topic (401 forged, 403 another tenant’s or send), a subscription that can be received from (404)', async () => {
    const topic = h.newTopic();
    const other = h.newTopic();
    const from = { fromOffset: 0 };
    await expectRefusal(h.client.replay(topic.sas('listen', { namespaceKey: 'f'.repeat(64) }), topic.tenant, topic.topic, 'default', from), 401, 'invalid_token');
    await expectRefusal(h.client.replay(other.sas('listen'), topic.tenant, topic.topic, 'default', from), 403, 'insufficient_scope');
    await expectRefusal(h.client.replay(topic.sas('send'), topic.tenant, topic.topic, 'default', from), 403, 'insufficient_scope');
    await expectRefusal(h.client.replay(listen(topic), topic.tenant, topic.topic, 'made-up', from), 404, 'subscription_not_found');
  });

  it('a replay’s status answers only for its tenant, topic and subscription: 404 replay_not_found otherwise', async () => {
    const owner = h.newTenant();
    const topic = h.newTopic(owner, ['default', 'siem']);
    await publish(topic, 1);
    const started = await h.client.replay(listen(topic), topic.tenant, topic.topic, 'default', { fromOffset: 0 });
    await finished(topic, 'default', started.replay_id);
    await expectRefusal(h.client.replayStatus(listen(topic), topic.tenant, topic.topic, 'default', randomUUID()), 404, 'replay_not_found');
    await expectRefusal(h.client.replayStatus(listen(topic), topic.tenant, topic.topic, 'siem', started.replay_id), 404, 'replay_not_found');
    const sibling = h.newTopic(owner);
    await expectRefusal(h.client.replayStatus(listen(sibling), sibling.tenant, sibling.topic, 'default', started.replay_id), 404, 'replay_not_found');
    await expectRefusal(h.client.replayStatus(sibling.sas('listen'), topic.tenant, topic.topic, 'default', started.replay_id), 403, 'insufficient_scope');
    const malformed = await h.http.get(`/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/default/replays/not-an-id`, { headers: { authorization: listen(topic) } });
    expectErrorBody(malformed, 400, 'invalid_request');
  });
});

describe('replays of an instance that stops (memory broker)', { timeout: 60_000 }, () => {
  it('at most 3 run per subscription (429); an instance closing records its replays interrupted with last_offset, and another instance finishes from last_offset + 1', async () => {
    // one broker and one store for both instances, outliving the first
    const broker = createMemoryBroker();
    const store = createMemoryStore({ prefix: `replay-test-${randomUUID()}:` });
    const a = await startTopic('memory', {}, { broker, store });
    const b = await startTopic('memory', {}, { broker, store });
    try {
      const topic = a.newTopic();
      // PAC's verdicts: both instances know the tenant's keys
      b.tenantKeys.set(topic.tenant, a.tenantKeys.get(topic.tenant)!);
      const listen = topic.sas('listen');
      await a.client.receive(listen, topic.tenant, topic.topic, 'default', 0);
      // straight onto the broker: a backlog long enough that the copies are still running below
      const total = 50_000;
      const body = Buffer.from(JSON.stringify(topic.batch()));
      for (let i = 0; i < total; i++) await broker.publish(topic, body, { messageId: `m-${i}`, contentType: 'application/json' });

      const running = [];
      for (let i = 0; i < 3; i++) running.push(await a.client.replay(listen, topic.tenant, topic.topic, 'default', { fromOffset: 0 }));
      await expectRefusal(b.client.replay(listen, topic.tenant, topic.topic, 'default', { fromOffset: 0 }), 429, 'too_many_requests');
      await a.close();

      const [first] = running;
      const interrupted = await b.client.replayStatus(listen, topic.tenant, topic.topic, 'default', first!.replay_id);
      expect(interrupted).toMatchObject({ status: 'interrupted', finished_at: expect.any(String) });
      expect(interrupted.copied).toBeLessThan(total);
      expect(interrupted.last_offset! - interrupted.first_offset! + 1).toBe(interrupted.copied);

      const rest = await b.client.replay(listen, topic.tenant, topic.topic, 'default', { fromOffset: interrupted.last_offset! + 1 });
      const deadline = Date.now() + 30_000;
      let status = rest;
      while (status.status === 'running' && Date.now() < deadline) {
        await sleep(100);
        status = await b.client.replayStatus(listen, topic.tenant, topic.topic, 'default', rest.replay_id);
      }
      expect(status).toMatchObject({ status: 'completed', first_offset: interrupted.last_offset! + 1 });
      expect(interrupted.copied + status.copied).toBe(total);
    } finally {
      await b.close();
      await broker.close();
      await store.close();
    }
  });
});
