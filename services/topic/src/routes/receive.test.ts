import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROKERS, expectErrorBody, sleep, startTopic, type Harness, type TestTopic } from '../testing/harness.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe.each(BROKERS)('peek-lock receive (%s broker)', { timeout: 20_000 }, (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTopic(kind);
  });
  afterAll(() => h.close());

  const receive = (t: TestTopic, timeoutSec: number, sub = 'default') => h.client.receive(t.sas('listen'), t.tenant, t.topic, sub, timeoutSec);

  it('returns the published batch with a lock token, a lock deadline and delivery count 1 (201)', async () => {
    const topic = h.newTopic();
    const batch = topic.batch();
    await h.client.publish(topic.sas('send'), batch);
    const before = Date.now();
    const message = await receive(topic, 5);
    expect(message).not.toBeNull();
    expect(message!.message_id).toBe(batch.id);
    expect(message!.lock_token).toMatch(UUID);
    expect(message!.delivery_count).toBe(1);
    expect(message!.batch).toEqual(batch);
    const lockedUntil = Date.parse(message!.locked_until);
    expect(lockedUntil).toBeGreaterThanOrEqual(before + 59_000);
    expect(lockedUntil).toBeLessThanOrEqual(Date.now() + 60_000);
  });

  it('answers 204 when nothing arrives within the timeout', async () => {
    const topic = h.newTopic();
    const started = Date.now();
    const response = await h.http.post(`/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/default/messages/head`, undefined, {
      params: { timeout: 1 },
      headers: { authorization: topic.sas('listen') },
    });
    expect(response.status).toBe(204);
    expect(response.data).toBe('');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('a long poll returns as soon as a batch is published during the wait', async () => {
    const topic = h.newTopic();
    await receive(topic, 0);
    const started = Date.now();
    const waiting = receive(topic, 30);
    await sleep(300);
    const batch = topic.batch();
    await h.client.publish(topic.sas('send'), batch);
    const message = await waiting;
    expect(message?.batch).toEqual(batch);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('gives each subscription its own copy', async () => {
    const owner = h.newTenant();
    const topic = h.newTopic(owner, ['default', 'audit']);
    await receive(topic, 0, 'audit');
    const batch = topic.batch();
    await h.client.publish(topic.sas('send'), batch);
    expect((await receive(topic, 5))?.batch).toEqual(batch);
    expect((await receive(topic, 5, 'audit'))?.batch).toEqual(batch);
  });

  it('stops waiting at the broker when the client abandons the long poll', async () => {
    const topic = h.newTopic();
    await receive(topic, 0);
    const abort = new AbortController();
    const abandoned = h.http
      .post(`/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/default/messages/head`, undefined, {
        params: { timeout: 20 },
        headers: { authorization: topic.sas('listen') },
        signal: abort.signal,
      })
      .catch((err: unknown) => err);
    await sleep(300);
    abort.abort();
    await abandoned;
    await sleep(200);
    // the abandoned poll stopped waiting at the broker, so it does not take this batch
    const batch = topic.batch();
    await h.client.publish(topic.sas('send'), batch);
    const started = Date.now();
    const message = await receive(topic, 10);
    expect(message).toMatchObject({ batch, delivery_count: 1 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(h.logs.some((line) => line.msg === 'lock.release_failed')).toBe(false);
  });

  it('refuses a timeout that is not a whole number of seconds in 0..60 with 400', async () => {
    const topic = h.newTopic();
    const url = `/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/default/messages/head`;
    for (const timeout of ['61', '-1', '1.5', 'soon']) {
      const response = await h.http.post(url, undefined, { params: { timeout }, headers: { authorization: topic.sas('listen') } });
      expectErrorBody(response, 400, 'invalid_request');
    }
  });
});
