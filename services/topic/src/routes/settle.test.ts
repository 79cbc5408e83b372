import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROKERS, expectErrorBody, expectRefusal, sleep, startTopic, type Harness, type TestTopic } from '../testing/harness.ts';

describe.each(BROKERS)('complete, abandon, renew (%s broker)', { timeout: 20_000 }, (kind) => {
  let h: Harness;
  /** LOCK_DURATION_SEC = 1 */
  let short: Harness;
  beforeAll(async () => {
    [h, short] = await Promise.all([startTopic(kind), startTopic(kind, { LOCK_DURATION_SEC: 1 })]);
  });
  afterAll(() => Promise.all([h.close(), short.close()]));

  const publishAndReceive = async (on: Harness, topic: TestTopic) => {
    const batch = topic.batch();
    await on.client.publish(topic.sas('send'), batch);
    const message = await on.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 5);
    if (!message) throw new Error('nothing received');
    expect(message.message_id).toBe(batch.id);
    return message;
  };
  const receive = (on: Harness, t: TestTopic, timeoutSec: number) => on.client.receive(t.sas('listen'), t.tenant, t.topic, 'default', timeoutSec);

  it('complete removes the message (200); completing again is 410 lock_lost', async () => {
    const topic = h.newTopic();
    const m = await publishAndReceive(h, topic);
    const url = `/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/default/messages/${m.message_id}/${m.lock_token}`;
    const first = await h.http.delete(url, { headers: { authorization: topic.sas('listen') } });
    expect(first.status).toBe(200);
    expect(first.data).toEqual({ message_id: m.message_id, status: 'completed' });
    expect(await receive(h, topic, 1)).toBeNull();
    expectErrorBody(await h.http.delete(url, { headers: { authorization: topic.sas('listen') } }), 410, 'lock_lost');
  });

  it('abandon returns the message at once, delivered again with delivery_count 2', async () => {
    const topic = h.newTopic();
    const m = await publishAndReceive(h, topic);
    await h.client.abandon(topic.sas('listen'), topic.tenant, topic.topic, 'default', m.message_id, m.lock_token);
    const again = await receive(h, topic, 5);
    expect(again).toMatchObject({ message_id: m.message_id, delivery_count: 2, batch: m.batch });
    expect(again!.lock_token).not.toBe(m.lock_token);
    // the old lock settles nothing any more
    await expectRefusal(h.client.complete(topic.sas('listen'), topic.tenant, topic.topic, 'default', m.message_id, m.lock_token), 410, 'lock_lost');
    await h.client.complete(topic.sas('listen'), topic.tenant, topic.topic, 'default', again!.message_id, again!.lock_token);
  });

  it('an expired lock returns the message to the queue; the old lock token is lost', async () => {
    const topic = short.newTopic();
    const m = await publishAndReceive(short, topic);
    expect(await receive(short, topic, 0)).toBeNull();
    await sleep(1300);
    const again = await receive(short, topic, 5);
    expect(again).toMatchObject({ message_id: m.message_id, delivery_count: 2 });
    await expectRefusal(short.client.complete(topic.sas('listen'), topic.tenant, topic.topic, 'default', m.message_id, m.lock_token), 410, 'lock_lost');
    await expectRefusal(short.client.renewLock(topic.sas('listen'), topic.tenant, topic.topic, 'default', m.message_id, m.lock_token), 410, 'lock_lost');
    await short.client.complete(topic.sas('listen'), topic.tenant, topic.topic, 'default', again!.message_id, again!.lock_token);
  });

  it('renew extends locked_until and keeps the message locked past the first deadline', async () => {
    const topic = short.newTopic();
    const m = await publishAndReceive(short, topic);
    const url = `/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/default/messages/${m.message_id}/${m.lock_token}`;
    await sleep(600);
    const renewed = await short.http.post(url, undefined, { headers: { authorization: topic.sas('listen') } });
    expect(renewed.status).toBe(200);
    const lockedUntil = Date.parse((renewed.data as { locked_until: string }).locked_until);
    expect(lockedUntil).toBeGreaterThan(Date.parse(m.locked_until) + 500);
    await sleep(600);
    // past the original deadline, still locked: not redelivered, and completes
    expect(await receive(short, topic, 0)).toBeNull();
    await short.client.complete(topic.sas('listen'), topic.tenant, topic.topic, 'default', m.message_id, m.lock_token);
    await sleep(700);
    expect(await receive(short, topic, 0)).toBeNull();
  });

  it('a lock token settles only its own message, subscription, topic and tenant (410 otherwise)', async () => {
    const owner = h.newTenant();
    const topic = h.newTopic(owner);
    const sibling = h.newTopic(owner);
    const m = await publishAndReceive(h, topic);
    const listen = topic.sas('listen');
    await expectRefusal(h.client.complete(listen, topic.tenant, topic.topic, 'default', 'b-other', m.lock_token), 410, 'lock_lost');
    await expectRefusal(h.client.complete(listen, topic.tenant, topic.topic, 'other', m.message_id, m.lock_token), 410, 'lock_lost');
    await expectRefusal(h.client.complete(sibling.sas('listen'), sibling.tenant, sibling.topic, 'default', m.message_id, m.lock_token), 410, 'lock_lost');
    await expectRefusal(h.client.complete(listen, topic.tenant, topic.topic, 'default', m.message_id, randomUUID()), 410, 'lock_lost');
    // none of these touched the real lock
    await h.client.complete(listen, topic.tenant, topic.topic, 'default', m.message_id, m.lock_token);
  });

  it('refuses a malformed lock token or message id with 400', async () => {
    const topic = h.newTopic();
    const base = `/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/default/messages`;
    const headers = { authorization: topic.sas('listen') };
    expectErrorBody(await h.http.delete(`${base}/b-1/not-a-lock-token`, { headers }), 400, 'invalid_request');
    expectErrorBody(await h.http.put(`${base}/${encodeURIComponent('b 1!')}/${randomUUID()}`, undefined, { headers }), 400, 'invalid_request');
  });

  it('close() returns every locked message to its queue, without counting a delivery (as a crash would not)', async () => {
    const own = await startTopic(kind);
    try {
      const topic = own.newTopic();
      const m = await publishAndReceive(own, topic);
      await own.app.close();
      const returned = await own.broker.receive(topic, 'default', 5000);
      expect(returned).toMatchObject({ messageId: m.message_id, deliveryCount: 1 });
      await returned!.ack();
      // a closed app locks nothing new: it answers 503 and the message goes back
      await own.client.publish(topic.sas('send'), topic.batch());
      await expectRefusal(own.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 5), 503, 'temporarily_unavailable');
      // nor does one the closed app never handed out
      expect(await own.broker.receive(topic, 'default', 5000)).toMatchObject({ deliveryCount: 1 });
    } finally {
      await own.close();
    }
  });
});
