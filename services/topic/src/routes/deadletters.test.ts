import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryEvents, type AuditDb } from '@keyway/audit';
import type { ReceivedMessage } from '@keyway/contracts';
import { keyIdOfSignature, parseSas } from '@keyway/sas';
import { CHECKED_BATCH, storedBatch } from '../batches/validate.ts';
import { BROKERS, expectErrorBody, expectRefusal, sleep, startTopic, type Harness, type TestTopic } from '../testing/harness.ts';

const MAX_DELIVERIES = 3;

/**
 * Issue 16, dead letters: a receiver dead-letters a batch with its own reason; every dead letter
 * carries why (Azure's DeadLetterReason / DeadLetterErrorDescription) on the HTTP answers; the tenant
 * resubmits dead letters to their subscription, recorded in the topic service's trail.
 */
describe.each(BROKERS)('dead-letter reasons, explicit dead-letter, resubmit (%s broker)', { timeout: 30_000 }, (kind) => {
  let h: Harness;
  /** a second instance of the same deploy (store and broker shared), which passes settles on to h */
  let peer: Harness;
  beforeAll(async () => {
    h = await startTopic(kind, {}, { maxDeliveries: MAX_DELIVERIES });
    peer = await startTopic(kind, {}, { store: h.store, broker: h.broker, auditDb: h.auditDb });
  });
  afterAll(async () => {
    await peer?.close();
    await h?.close();
  });

  const listen = (t: TestTopic) => t.sas('listen');
  const receive = (t: TestTopic, timeoutSec: number, via = h) => via.client.receive(listen(t), t.tenant, t.topic, 'default', timeoutSec);
  const receiveDead = (t: TestTopic, timeoutSec: number) => h.client.deadLetter.receive(listen(t), t.tenant, t.topic, 'default', timeoutSec);
  const messagePath = (t: TestTopic, m: ReceivedMessage, entity = 'default') => `/tenants/${t.tenant}/topics/${t.topic}/subscriptions/${entity}/messages/${m.message_id}/${m.lock_token}`;

  /** publishes `count` batches and receives each, locked on `via` */
  const locked = async (t: TestTopic, count = 1, via = h): Promise<ReceivedMessage[]> => {
    const held: ReceivedMessage[] = [];
    for (let i = 0; i < count; i++) {
      const batch = t.batch();
      await h.client.publish(t.sas('send'), batch);
      const m = await receive(t, 5, via);
      expect(m).toMatchObject({ message_id: batch.id, delivery_count: 1 });
      held.push(m!);
    }
    return held;
  };

  it('a receiver dead-letters a locked batch with its reason and description: never delivered again, received from $deadletterqueue with them', async () => {
    const topic = h.newTopic();
    const [m] = await locked(topic);
    await h.client.deadLetterMessage(listen(topic), topic.tenant, topic.topic, 'default', m!.message_id, m!.lock_token, { reason: 'SchemaMismatch', description: 'records[0].host is missing' });
    // its lock is spent, and the subscription no longer has it
    await expectRefusal(h.client.complete(listen(topic), topic.tenant, topic.topic, 'default', m!.message_id, m!.lock_token), 410, 'lock_lost');
    expect(await receive(topic, 1)).toBeNull();
    const dead = await receiveDead(topic, 5);
    expect(dead).toEqual({ ...m, lock_token: expect.any(String), locked_until: expect.any(String), dead_letter_reason: 'SchemaMismatch', dead_letter_error_description: 'records[0].host is missing' });
    await h.client.deadLetter.complete(listen(topic), topic.tenant, topic.topic, 'default', dead!.message_id, dead!.lock_token);
  });

  it('answers the Azure path with {message_id, status}; without a reason it is DeadLetteredByReceiver; a dead letter’s lock has no such route', async () => {
    const topic = h.newTopic();
    const [m] = await locked(topic);
    const answered = await h.http.post(`${messagePath(topic, m!)}/deadletter`, {}, { headers: { authorization: listen(topic) } });
    expect(answered.status).toBe(200);
    expect(answered.data).toEqual({ message_id: m!.message_id, status: 'deadlettered' });
    const dead = (await receiveDead(topic, 5))!;
    expect(dead).toMatchObject({ message_id: m!.message_id, dead_letter_reason: 'DeadLetteredByReceiver' });
    expect(dead).not.toHaveProperty('dead_letter_error_description');
    // a dead letter is not dead-lettered again: no route, and its lock is untouched
    const again = await h.http.post(`${messagePath(topic, dead, 'default/$deadletterqueue')}/deadletter`, {}, { headers: { authorization: listen(topic) } });
    expect(again.status).toBe(404);
    // nor through another instance's pass-on
    const forwarded = { action: 'deadletter', tenant: topic.tenant, topic: topic.topic, subscription: 'default', deadLetter: true, messageId: dead.message_id, reason: 'Again' } as const;
    await expectRefusal(h.as('topic').settleForwarded(dead.lock_token, forwarded), 410, 'lock_lost');
    await h.client.deadLetter.complete(listen(topic), topic.tenant, topic.topic, 'default', dead.message_id, dead.lock_token);
  });

  it('refuses a bad reason or description (400), another media type (415), a send key (403), and a lock that is not held (410), touching no lock', async () => {
    const topic = h.newTopic();
    const [m] = await locked(topic);
    const post = (body: unknown, headers: Record<string, string> = {}) => h.http.post(`${messagePath(topic, m!)}/deadletter`, body, { headers: { authorization: listen(topic), ...headers } });
    expectErrorBody(await post({ reason: '' }), 400, 'invalid_request');
    expectErrorBody(await post({ reason: 'x'.repeat(129) }), 400, 'invalid_request');
    expectErrorBody(await post({ reason: 'bad\nreason' }), 400, 'invalid_request');
    expectErrorBody(await post({ description: 'y'.repeat(1025) }), 400, 'invalid_request');
    expectErrorBody(await post('reason=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
    await expectRefusal(h.client.deadLetterMessage(topic.sas('send'), topic.tenant, topic.topic, 'default', m!.message_id, m!.lock_token), 403, 'insufficient_scope');
    await expectRefusal(h.client.deadLetterMessage(listen(topic), topic.tenant, topic.topic, 'default', m!.message_id, randomUUID()), 410, 'lock_lost');
    // none of it touched the lock
    await h.client.complete(listen(topic), topic.tenant, topic.topic, 'default', m!.message_id, m!.lock_token);
    expect(await receiveDead(topic, 0)).toBeNull();
  });

  it('a lock held by another instance is dead-lettered there, with the reason (the settle is passed on)', async () => {
    const topic = h.newTopic();
    // PAC answers both instances alike
    peer.tenantKeys.set(topic.tenant, h.tenantKeys.get(topic.tenant)!);
    const [m] = await locked(topic, 1, h);
    await peer.client.deadLetterMessage(listen(topic), topic.tenant, topic.topic, 'default', m!.message_id, m!.lock_token, { reason: 'PoisonBatch', description: 'parser crashed' });
    expect(await receive(topic, 1, peer)).toBeNull();
    expect(await receiveDead(topic, 5)).toMatchObject({ message_id: m!.message_id, dead_letter_reason: 'PoisonBatch', dead_letter_error_description: 'parser crashed' });
    // settled on h, the holder, which the peer passed it on to
    expect(h.logs.some((line) => line.msg === 'request' && line.path === `/internal/v1/locks/${m!.lock_token}` && line.status === 200)).toBe(true);
  });

  it('a batch returned MAX_DELIVERIES times is a dead letter with reason MaxDeliveryCountExceeded', async () => {
    const topic = h.newTopic();
    const [first] = await locked(topic);
    let m = first!;
    for (let i = 1; i < MAX_DELIVERIES; i++) {
      await h.client.abandon(listen(topic), topic.tenant, topic.topic, 'default', m.message_id, m.lock_token);
      m = (await receive(topic, 5))!;
    }
    await h.client.abandon(listen(topic), topic.tenant, topic.topic, 'default', m.message_id, m.lock_token);
    expect(await receive(topic, 1)).toBeNull();
    expect(await receiveDead(topic, 5)).toMatchObject({
      message_id: m.message_id,
      delivery_count: 1,
      dead_letter_reason: 'MaxDeliveryCountExceeded',
      dead_letter_error_description: `delivered ${MAX_DELIVERIES} times`,
    });
  });

  it('a batch whose time to live ran out is a dead letter with reason TTLExpiredException', async () => {
    const topic = h.newTopic();
    expect(await receive(topic, 0)).toBeNull();
    const batch = topic.batch();
    await h.broker.publish(topic, storedBatch(batch), { messageId: batch.id, contentType: CHECKED_BATCH, ttlMs: 300 });
    await sleep(800);
    expect(await receive(topic, 1)).toBeNull();
    expect(await receiveDead(topic, 5)).toMatchObject({ message_id: batch.id, batch, dead_letter_reason: 'TTLExpiredException' });
  });

  /** dead-letters `count` batches of the topic, oldest first; their ids */
  const deadLettered = async (topic: TestTopic, count: number): Promise<string[]> => {
    const held = await locked(topic, count);
    for (const m of held) await h.client.deadLetterMessage(listen(topic), topic.tenant, topic.topic, 'default', m.message_id, m.lock_token, { reason: 'Later' });
    return held.map((m) => m.message_id);
  };
  const resubmits = async (tenant: string) => (await queryEvents(h.auditDb, { stream: 'topic', tenant, action: 'deadletters.resubmitted', order: 'oldest' })).events;

  it('the tenant resubmits dead letters (SAS listen): oldest first, up to max, delivered again from count 1 without a reason; each resubmit recorded with the key id', async () => {
    const topic = h.newTopic();
    const ids = await deadLettered(topic, 3);
    const key = listen(topic);
    expect(await h.client.deadLetter.resubmit(key, topic.tenant, topic.topic, 'default', 2)).toBe(2);
    const first = await receive(topic, 5);
    const second = await receive(topic, 5);
    expect([first?.message_id, second?.message_id]).toEqual(ids.slice(0, 2));
    for (const m of [first!, second!]) {
      expect(m.delivery_count).toBe(1);
      expect(m).not.toHaveProperty('dead_letter_reason');
      await h.client.complete(key, topic.tenant, topic.topic, 'default', m.message_id, m.lock_token);
    }
    expect(await receive(topic, 0)).toBeNull();
    // the rest, by default up to 100; then nothing is left to move
    expect(await h.client.deadLetter.resubmit(key, topic.tenant, topic.topic, 'default')).toBe(1);
    expect(await receive(topic, 5)).toMatchObject({ message_id: ids[2], delivery_count: 1 });
    expect(await h.client.deadLetter.resubmit(key, topic.tenant, topic.topic, 'default')).toBe(0);

    const keyId = keyIdOfSignature(parseSas(key).signature);
    const events = await resubmits(topic.tenant);
    expect(events.map((e) => e.detail?.count)).toEqual(['2', '1', '0']);
    for (const event of events) {
      expect(event).toMatchObject({ service: 'topic', outcome: 'success', tenant: topic.tenant, tokenId: keyId, detail: { topic: topic.topic, subscription: 'default' } });
    }
  });

  it('the internal route resubmits for an operator, for the entitlement service’s certificate only', async () => {
    const topic = h.newTopic();
    await deadLettered(topic, 2);
    // no certificate, or another service's: refused before anything moves
    const path = `/internal/v1/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/default/$deadletterqueue/resubmit`;
    expectErrorBody(await h.http.post(path, {}), 401, 'invalid_client');
    await expectRefusal(h.as('topic').resubmitDeadLettersInternal(topic.tenant, topic.topic, 'default'), 403, 'access_denied');
    expect(await receive(topic, 0)).toBeNull();
    expect(await h.as('entitlement').resubmitDeadLettersInternal(topic.tenant, topic.topic, 'default', 1)).toBe(1);
    expect(await receive(topic, 5)).toMatchObject({ delivery_count: 1 });
    await expectRefusal(h.as('entitlement').resubmitDeadLettersInternal(topic.tenant, topic.topic, 'unlisted'), 404, 'subscription_not_found');
    // the entitlement service records it in its own trail, naming the operator
    expect(await resubmits(topic.tenant)).toEqual([]);
  });

  it('with its trail out of reach it is not ready and refuses a resubmit (503) before anything moves; it recovers', async () => {
    let down = false;
    // the database layer's outage error (DbUnavailableError), as a cut connection raises it
    const cut = <T>(query: () => Promise<T>): Promise<T> => (down ? Promise.reject(Object.assign(new Error('the audit database does not answer'), { code: 'ERR_DB_UNAVAILABLE' })) : query());
    const trail: AuditDb = { query: (sql, params) => cut(() => h.auditDb.query(sql, params)), exec: (sql) => cut(() => h.auditDb.exec(sql)) };
    const own = await startTopic(kind, {}, { store: h.store, broker: h.broker, auditDb: trail });
    try {
      const topic = own.newTopic();
      await own.client.publish(topic.sas('send'), topic.batch());
      const m = (await own.client.receive(listen(topic), topic.tenant, topic.topic, 'default', 5))!;
      await own.client.deadLetterMessage(listen(topic), topic.tenant, topic.topic, 'default', m.message_id, m.lock_token);
      expect((await own.http.get('/readyz')).status).toBe(200);

      down = true;
      const ready = await own.http.get('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.data.checks).toContainEqual({ name: 'audit', ok: false });
      await expectRefusal(own.client.deadLetter.resubmit(listen(topic), topic.tenant, topic.topic, 'default'), 503, 'temporarily_unavailable');
      expect(await own.client.receive(listen(topic), topic.tenant, topic.topic, 'default', 0)).toBeNull();

      down = false;
      expect((await own.http.get('/readyz')).status).toBe(200);
      expect(await own.client.deadLetter.resubmit(listen(topic), topic.tenant, topic.topic, 'default')).toBe(1);
      expect(await resubmits(topic.tenant)).toHaveLength(1);
    } finally {
      await own.close();
    }
  });

  it('refuses a resubmit with a send key (403), a bad max (400), for a subscription that is not listed (404); refusals are not recorded', async () => {
    const topic = h.newTopic();
    await deadLettered(topic, 1);
    await expectRefusal(h.client.deadLetter.resubmit(topic.sas('send'), topic.tenant, topic.topic, 'default'), 403, 'insufficient_scope');
    for (const max of [0, 1001, 1.5]) await expectRefusal(h.client.deadLetter.resubmit(listen(topic), topic.tenant, topic.topic, 'default', max), 400, 'invalid_request');
    await expectRefusal(h.client.deadLetter.resubmit(listen(topic), topic.tenant, topic.topic, 'unlisted'), 404, 'subscription_not_found');
    expect(await resubmits(topic.tenant)).toEqual([]);
    expect(await receive(topic, 0)).toBeNull();
    expect(await receiveDead(topic, 5)).toMatchObject({ dead_letter_reason: 'Later' });
  });
});
