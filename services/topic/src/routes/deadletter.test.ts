import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReceivedMessage } from '@keyway/contracts';
import { BROKERS, expectErrorBody, expectRefusal, startTopic, type Harness, type TestTopic } from '../testing/harness.ts';

const MAX_DELIVERIES = 3;

describe.each(BROKERS)('dead-letter queue (%s broker)', { timeout: 20_000 }, (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTopic(kind, {}, { maxDeliveries: MAX_DELIVERIES });
  });
  afterAll(() => h.close());

  const listen = (t: TestTopic) => t.sas('listen');
  const receive = (t: TestTopic, timeoutSec: number) => h.client.receive(listen(t), t.tenant, t.topic, 'default', timeoutSec);
  const receiveDead = (t: TestTopic, timeoutSec: number) => h.client.deadLetter.receive(listen(t), t.tenant, t.topic, 'default', timeoutSec);
  const dlqPath = (t: TestTopic) => `/tenants/${t.tenant}/topics/${t.topic}/subscriptions/default/$deadletterqueue/messages`;

  /** publishes a batch and abandons it MAX_DELIVERIES times, which dead-letters it */
  const deadLetter = async (t: TestTopic) => {
    const batch = t.batch();
    await h.client.publish(t.sas('send'), batch);
    for (let i = 1; i <= MAX_DELIVERIES; i++) {
      const m = await receive(t, 5);
      expect(m).toMatchObject({ message_id: batch.id, delivery_count: i });
      await h.client.abandon(listen(t), t.tenant, t.topic, 'default', m!.message_id, m!.lock_token);
    }
    return batch;
  };

  it('a batch abandoned MAX_DELIVERIES times moves to the dead-letter queue: no longer delivered, receivable from $deadletterqueue as published', async () => {
    const topic = h.newTopic();
    const batch = await deadLetter(topic);
    expect(await receive(topic, 1)).toBeNull();
    const dead = await receiveDead(topic, 5);
    expect(dead).toMatchObject({ message_id: batch.id, delivery_count: 1, batch });
    await h.client.deadLetter.complete(listen(topic), topic.tenant, topic.topic, 'default', dead!.message_id, dead!.lock_token);
    expect(await receiveDead(topic, 1)).toBeNull();
    expect(await receive(topic, 0)).toBeNull();
  });

  it('answers the Azure paths: 201 with a lock, 204 when empty; $DeadLetterQueue in Azure casing too', async () => {
    const topic = h.newTopic();
    const empty = await h.http.post(`${dlqPath(topic)}/head`, undefined, { params: { timeout: 0 }, headers: { authorization: listen(topic) } });
    expect(empty.status).toBe(204);
    const batch = await deadLetter(topic);
    const azure = `/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/default/$DeadLetterQueue/messages`;
    const response = await h.http.post(`${azure}/head`, undefined, { params: { timeout: 5 }, headers: { authorization: listen(topic) } });
    expect(response.status).toBe(201);
    const m = response.data as ReceivedMessage;
    expect(m).toMatchObject({ message_id: batch.id, batch });
    const settled = await h.http.delete(`${dlqPath(topic)}/${m.message_id}/${m.lock_token}`, { headers: { authorization: listen(topic) } });
    expect(settled.status).toBe(200);
    expect(settled.data).toEqual({ message_id: m.message_id, status: 'completed' });
  });

  it('abandon returns a dead letter to the dead-letter queue (not the subscription), renew extends its lock', async () => {
    const topic = h.newTopic();
    const batch = await deadLetter(topic);
    const first = await receiveDead(topic, 5);
    const renewed = await h.http.post(`${dlqPath(topic)}/${first!.message_id}/${first!.lock_token}`, undefined, { headers: { authorization: listen(topic) } });
    expect(renewed.status).toBe(200);
    expect(Date.parse((renewed.data as { locked_until: string }).locked_until)).toBeGreaterThanOrEqual(Date.parse(first!.locked_until));
    await h.client.deadLetter.abandon(listen(topic), topic.tenant, topic.topic, 'default', first!.message_id, first!.lock_token);
    expect(await receive(topic, 0)).toBeNull();
    const again = await receiveDead(topic, 5);
    expect(again).toMatchObject({ message_id: batch.id, delivery_count: 2, batch });
    await h.client.deadLetter.complete(listen(topic), topic.tenant, topic.topic, 'default', again!.message_id, again!.lock_token);
  });

  it('a lock settles only on the queue it came from: a dead-letter lock on the subscription path is 410, and the reverse', async () => {
    const topic = h.newTopic();
    await deadLetter(topic);
    const dead = await receiveDead(topic, 5);
    await expectRefusal(h.client.complete(listen(topic), topic.tenant, topic.topic, 'default', dead!.message_id, dead!.lock_token), 410, 'lock_lost');
    const live = topic.batch();
    await h.client.publish(topic.sas('send'), live);
    const m = await receive(topic, 5);
    await expectRefusal(h.client.deadLetter.complete(listen(topic), topic.tenant, topic.topic, 'default', m!.message_id, m!.lock_token), 410, 'lock_lost');
    // neither refusal touched the real locks
    await h.client.deadLetter.complete(listen(topic), topic.tenant, topic.topic, 'default', dead!.message_id, dead!.lock_token);
    await h.client.complete(listen(topic), topic.tenant, topic.topic, 'default', m!.message_id, m!.lock_token);
  });

  it('requires listen: a send key is 403 on the dead-letter receive and settle paths', async () => {
    const topic = h.newTopic();
    const send = topic.sas('send');
    await expectRefusal(h.client.deadLetter.receive(send, topic.tenant, topic.topic, 'default', 0), 403, 'insufficient_scope');
    const lockToken = randomUUID();
    await expectRefusal(h.client.deadLetter.complete(send, topic.tenant, topic.topic, 'default', 'b-1', lockToken), 403, 'insufficient_scope');
    await expectRefusal(h.client.deadLetter.abandon(send, topic.tenant, topic.topic, 'default', 'b-1', lockToken), 403, 'insufficient_scope');
    await expectRefusal(h.client.deadLetter.renewLock(send, topic.tenant, topic.topic, 'default', 'b-1', lockToken), 403, 'insufficient_scope');
    expectErrorBody(await h.http.post(`${dlqPath(topic)}/head`, undefined, { params: { timeout: 61 }, headers: { authorization: listen(topic) } }), 400, 'invalid_request');
  });

  it('skips a dead letter that is not a batch and leaves it in the dead-letter queue for an operator', async () => {
    const topic = h.newTopic();
    await receive(topic, 0);
    // put on the queue by other means than publish: receive dead-letters it at once
    await h.broker.publish(topic, Buffer.from('not a batch'), { messageId: 'garbage-1', contentType: 'text/plain' });
    expect(await receive(topic, 1)).toBeNull();
    expect(await receiveDead(topic, 1)).toBeNull();
    // a readable one behind it is still received
    const batch = await deadLetter(topic);
    expect(await receiveDead(topic, 5)).toMatchObject({ message_id: batch.id, batch });
    const kept = await h.broker.receiveDeadLetter(topic, 'default', 5000);
    expect(kept).toMatchObject({ messageId: 'garbage-1', deadLetterReason: 'UnreadableMessage' });
    expect(kept!.body.toString()).toBe('not a batch');
    await kept!.ack();
    expect(h.logs.some((line) => line.msg === 'delivery.unreadable' && line.deadLetter === true)).toBe(true);
  });
});
