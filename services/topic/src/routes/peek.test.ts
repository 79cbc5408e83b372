import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROKERS, expectErrorBody, expectRefusal, startTopic, type Harness, type TestTopic } from '../testing/harness.ts';

// a short lock, so "nothing comes back after the lock duration" is seen within the test
const LOCK_DURATION_SEC = 2;

describe.each(BROKERS)('peek and receive-and-delete (%s broker)', { timeout: 30_000 }, (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTopic(kind, { LOCK_DURATION_SEC });
  });
  afterAll(() => h.close());

  const publishThree = async (t: TestTopic) => {
    // declares `default` first (as a subscriber would), so the batches are held for it
    await h.client.receive(t.sas('listen'), t.tenant, t.topic, 'default', 0);
    const batches = [t.batch(), t.batch(), t.batch()];
    for (const batch of batches) await h.client.publish(t.sas('send'), batch);
    return batches;
  };

  it('peek shows the next N batches in order without locking or counting them: a receive right after gets the first, delivery_count 1', async () => {
    const topic = h.newTopic();
    const batches = await publishThree(topic);
    const peeked = await h.client.peek(topic.sas('listen'), topic.tenant, topic.topic, 'default', 2);
    expect(peeked).toEqual(batches.slice(0, 2).map((batch) => ({ message_id: batch.id, delivery_count: 1, batch })));
    // peeking again shows the same: nothing was taken
    expect((await h.client.peek(topic.sas('listen'), topic.tenant, topic.topic, 'default')).map((m) => m.message_id)).toEqual(batches.map((b) => b.id));
    const received = await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 5);
    expect(received).toMatchObject({ message_id: batches[0]!.id, delivery_count: 1 });
    await h.client.complete(topic.sas('listen'), topic.tenant, topic.topic, 'default', received!.message_id, received!.lock_token);
  });

  it('peek of an empty queue is an empty list; count outside 1..100 is 400; an unlisted subscription 404', async () => {
    const topic = h.newTopic();
    expect(await h.client.peek(topic.sas('listen'), topic.tenant, topic.topic, 'default')).toEqual([]);
    const path = `/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/default/messages`;
    expectErrorBody(await h.http.get(path, { params: { count: 101 }, headers: { authorization: topic.sas('listen') } }), 400, 'invalid_request');
    await expectRefusal(h.client.peek(topic.sas('listen'), topic.tenant, topic.topic, 'made-up'), 404, 'subscription_not_found');
    // listen, not send
    await expectRefusal(h.client.peek(topic.sas('send'), topic.tenant, topic.topic, 'default'), 403, 'insufficient_scope');
  });

  it('receive-and-delete hands out the batch once: nothing comes back after the lock duration', async () => {
    const topic = h.newTopic();
    const [first, second] = await publishThree(topic);
    const taken = await h.client.receiveAndDelete(topic.sas('listen'), topic.tenant, topic.topic, 'default', 5);
    expect(taken).toEqual({ message_id: first!.id, delivery_count: 1, batch: first });
    await new Promise((resolve) => setTimeout(resolve, (LOCK_DURATION_SEC + 1) * 1000));
    const peeked = await h.client.peek(topic.sas('listen'), topic.tenant, topic.topic, 'default');
    expect(peeked.map((m) => m.message_id)).not.toContain(first!.id);
    const next = await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 5);
    expect(next?.message_id).toBe(second!.id);
    await h.client.complete(topic.sas('listen'), topic.tenant, topic.topic, 'default', next!.message_id, next!.lock_token);
  });

  it('receive-and-delete answers 204 when nothing arrives within the timeout', async () => {
    const topic = h.newTopic();
    expect(await h.client.receiveAndDelete(topic.sas('listen'), topic.tenant, topic.topic, 'default', 1)).toBeNull();
  });

  it('on the dead-letter queue: peek and receive-and-delete show the dead-letter reason', async () => {
    const topic = h.newTopic();
    const [batch] = await publishThree(topic);
    // dead-lettered by a receiver, through the broker (the receiver's route is another part of issue 16)
    const delivery = await h.broker.receive(topic, 'default', 5000);
    expect(delivery?.messageId).toBe(batch!.id);
    await delivery!.deadLetter('SiemRejected', 'unknown record type');
    const peeked = await h.client.deadLetter.peek(topic.sas('listen'), topic.tenant, topic.topic, 'default');
    expect(peeked).toHaveLength(1);
    expect(peeked[0]).toMatchObject({ dead_letter_reason: 'SiemRejected', dead_letter_error_description: 'unknown record type' });
    const taken = await h.client.deadLetter.receiveAndDelete(topic.sas('listen'), topic.tenant, topic.topic, 'default', 5);
    expect(taken).toMatchObject({ message_id: peeked[0]!.message_id, delivery_count: 1, dead_letter_reason: 'SiemRejected' });
    expect(await h.client.deadLetter.peek(topic.sas('listen'), topic.tenant, topic.topic, 'default')).toEqual([]);
  });
});
