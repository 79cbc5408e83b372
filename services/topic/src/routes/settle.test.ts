import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReceivedMessage } from '@keyway/contracts';
import { createMemoryStore, StoreUnavailableError } from '@keyway/store';
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

describe.each(BROKERS)('batch complete, POST …/messages/complete (%s broker)', { timeout: 30_000 }, (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTopic(kind, {}, { maxDeliveries: 1 });
  });
  afterAll(() => h.close());

  const locksOf = (messages: ReceivedMessage[]) => messages.map(({ message_id, lock_token }) => ({ message_id, lock_token }));
  /** publishes `count` batches and receives them all, each with its own lock */
  const heldLocks = async (topic: TestTopic, count: number) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const batch = topic.batch();
      await h.client.publish(topic.sas('send'), batch);
      ids.push(batch.id);
    }
    const received: ReceivedMessage[] = [];
    for (let m = await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 5); m; ) {
      received.push(m);
      if (received.length === count) break;
      m = await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 5);
    }
    expect(received.map((m) => m.message_id)).toEqual(ids);
    return received;
  };
  const completeMany = (topic: TestTopic, locks: Array<{ message_id: string; lock_token: string }>) => h.client.completeMany(topic.sas('listen'), topic.tenant, topic.topic, 'default', locks);
  const path = (topic: TestTopic) => `/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/default/messages/complete`;

  it('completes every lock it lists, answered in request order; none of them comes back', async () => {
    const topic = h.newTopic();
    const held = await heldLocks(topic, 12);
    const results = await completeMany(topic, locksOf(held));
    expect(results).toEqual(held.map(({ message_id, lock_token }) => ({ message_id, lock_token, status: 'completed' })));
    expect(await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 1)).toBeNull();
    // completed, not just unlocked: each lock settles nothing more
    await expectRefusal(h.client.abandon(topic.sas('listen'), topic.tenant, topic.topic, 'default', held[0]!.message_id, held[0]!.lock_token), 410, 'lock_lost');
    expect(h.logs.filter((line) => line.msg === 'lock.completed' && line.tenant === topic.tenant)).toHaveLength(12);
  });

  it('a lock that does not complete is lock_lost in its entry and fails none of the others (200)', async () => {
    const owner = h.newTenant();
    const topic = h.newTopic(owner);
    const sibling = h.newTopic(owner);
    const [done, held, other] = await heldLocks(topic, 3);
    const [elsewhere] = await heldLocks(sibling, 1);
    await h.client.complete(topic.sas('listen'), topic.tenant, topic.topic, 'default', done!.message_id, done!.lock_token);
    const unknown = { message_id: held!.message_id, lock_token: randomUUID() };
    const locks = [
      { message_id: done!.message_id, lock_token: done!.lock_token },
      unknown,
      { message_id: held!.message_id, lock_token: held!.lock_token.toUpperCase() },
      { message_id: 'b-not-this-one', lock_token: other!.lock_token },
      // another topic's lock (the key names this one): not settled through this path
      { message_id: elsewhere!.message_id, lock_token: elsewhere!.lock_token },
    ];
    const results = await completeMany(topic, locks);
    expect(results.map((r) => r.status)).toEqual(['lock_lost', 'lock_lost', 'completed', 'lock_lost', 'lock_lost']);
    expect(results.map(({ message_id, lock_token }) => ({ message_id, lock_token }))).toEqual(locks);
    // each lost entry is logged as a single complete's refusal would be, with why
    expect(h.logs.filter((line) => line.msg === 'lock.lost' && line.tenant === topic.tenant).map((line) => line.detail)).toEqual([
      'no such lock for this message',
      // a random token names an instance nobody listed
      expect.stringMatching(/^instance [0-9a-f]{12} is not listed/),
      'no such lock for this message',
      'no such lock for this message',
    ]);
    // the entries that named a live lock wrongly left it alone
    expect(await completeMany(topic, locksOf([other!]))).toMatchObject([{ status: 'completed' }]);
    expect(await completeMany(sibling, locksOf([elsewhere!]))).toMatchObject([{ status: 'completed' }]);
  });

  it('gives a stream its credit back, one per completed lock', async () => {
    const topic = h.newTopic();
    for (let i = 0; i < 4; i++) await h.client.publish(topic.sas('send'), topic.batch());
    const stream = h.client.stream(topic.sas('listen'), topic.tenant, topic.topic, 'default', { prefetch: 2, timeoutSec: 20 });
    const first = [(await stream.next()).value as ReceivedMessage, (await stream.next()).value as ReceivedMessage];
    expect(await completeMany(topic, locksOf(first))).toMatchObject([{ status: 'completed' }, { status: 'completed' }]);
    const next = [(await stream.next()).value as ReceivedMessage, (await stream.next()).value as ReceivedMessage];
    expect(new Set([...first, ...next].map((m) => m.message_id)).size).toBe(4);
    expect(await completeMany(topic, locksOf(next))).toMatchObject([{ status: 'completed' }, { status: 'completed' }]);
    await stream.return(undefined);
  });

  it('settles dead letters on $deadletterqueue, and a lock only on the queue it came from', async () => {
    const topic = h.newTopic();
    const batch = topic.batch();
    await h.client.publish(topic.sas('send'), batch);
    const m = await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 5);
    // maxDeliveries 1: abandoned once, it is a dead letter
    await h.client.abandon(topic.sas('listen'), topic.tenant, topic.topic, 'default', m!.message_id, m!.lock_token);
    const dead = await h.client.deadLetter.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 5);
    expect(dead).toMatchObject({ message_id: batch.id });
    expect(await completeMany(topic, locksOf([dead!]))).toMatchObject([{ status: 'lock_lost' }]);
    expect(await h.client.deadLetter.completeMany(topic.sas('listen'), topic.tenant, topic.topic, 'default', locksOf([dead!]))).toMatchObject([{ status: 'completed' }]);
    expect(await h.client.deadLetter.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 1)).toBeNull();
  });

  it('refuses a bad body before touching any lock: 400 invalid_request, 415 for another media type', async () => {
    const topic = h.newTopic();
    const [m] = await heldLocks(topic, 1);
    const headers = { authorization: topic.sas('listen') };
    const lock = { message_id: m!.message_id, lock_token: m!.lock_token };
    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ message_id: `b-${i}`, lock_token: randomUUID() }));
    for (const body of [
      { locks: [] },
      { locks: many(501) },
      { locks: [lock, { message_id: 'b-2', lock_token: lock.lock_token.toUpperCase() }] },
      { locks: [lock, { message_id: 'b-2', lock_token: 'not-a-lock-token' }] },
      { locks: [lock, { message_id: 'b 2!', lock_token: randomUUID() }] },
      { locks: lock },
      {},
    ]) {
      expectErrorBody(await h.http.post(path(topic), body, { headers }), 400, 'invalid_request');
    }
    expectErrorBody(await h.http.post(path(topic), '{"locks": [', { headers: { ...headers, 'content-type': 'application/json' } }), 400, 'invalid_request');
    expectErrorBody(await h.http.post(path(topic), JSON.stringify({ locks: [lock] }), { headers: { ...headers, 'content-type': 'text/plain' } }), 415, 'unsupported_media_type');
    // 500 is a stream's whole credit, and allowed
    expect((await h.http.post(path(topic), { locks: many(500) }, { headers })).status).toBe(200);
    // none of these touched the lock
    expect(await completeMany(topic, [lock])).toMatchObject([{ status: 'completed' }]);
  });

  it('503 before touching any lock when the store cannot say where another instance is', async () => {
    const store = createMemoryStore({ prefix: `keyway-test:settle-${randomUUID()}:` });
    let storeDown = false;
    const get = store.get.bind(store);
    store.get = (key) => (storeDown ? Promise.reject(new StoreUnavailableError('the store does not answer')) : get(key));
    const own = await startTopic(kind, {}, { store });
    try {
      const topic = own.newTopic();
      await own.client.publish(topic.sas('send'), topic.batch());
      const m = (await own.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 5))!;
      const locks = [
        { message_id: m.message_id, lock_token: m.lock_token },
        { message_id: m.message_id, lock_token: randomUUID() },
      ];
      storeDown = true;
      await expectRefusal(own.client.completeMany(topic.sas('listen'), topic.tenant, topic.topic, 'default', locks), 503, 'temporarily_unavailable');
      storeDown = false;
      expect((await own.client.completeMany(topic.sas('listen'), topic.tenant, topic.topic, 'default', locks)).map((r) => r.status)).toEqual(['completed', 'lock_lost']);
    } finally {
      await own.close();
      await store.close();
    }
  });

  it('needs a listen key for the topic: 401 without a valid one, 403 for send or another topic', async () => {
    const topic = h.newTopic();
    const other = h.newTopic();
    const [m] = await heldLocks(topic, 1);
    const locks = locksOf([m!]);
    await expectRefusal(h.client.completeMany('SharedAccessSignature sr=x&sig=y&se=1&skn=listen', topic.tenant, topic.topic, 'default', locks), 401, 'invalid_token');
    expectErrorBody(await h.http.post(path(topic), { locks }), 401, 'invalid_token');
    await expectRefusal(h.client.completeMany(topic.sas('send'), topic.tenant, topic.topic, 'default', locks), 403, 'insufficient_scope');
    await expectRefusal(h.client.completeMany(other.sas('listen'), topic.tenant, topic.topic, 'default', locks), 403, 'insufficient_scope');
    expect(await completeMany(topic, locks)).toMatchObject([{ status: 'completed' }]);
  });
});
