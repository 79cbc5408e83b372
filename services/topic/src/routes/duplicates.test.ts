import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { BrokerUnavailableError } from '@keyway/broker';
import { StoreUnavailableError } from '@keyway/store';
import { CLAIM_TTL_MS } from '../delivery/duplicates.ts';
import { BROKERS, expectRefusal, inventoryUnreachable, setFeedDelivery, sleep, startTopic, type Harness, type TestTopic } from '../testing/harness.ts';

describe.each(BROKERS)('publisher duplicate detection and the tier policy (%s broker)', { timeout: 30_000 }, (kind) => {
  /** two instances of the topic service sharing one store and one broker, as behind a load balancer */
  let h: Harness;
  let peer: Harness;
  beforeAll(async () => {
    h = await startTopic(kind);
    peer = await startTopic(kind, {}, { store: h.store, broker: h.broker });
  });
  afterAll(async () => {
    await peer.close();
    await h.close();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** a topic both instances know the tenant's keys of, with `default` declared so batches are held */
  const newTopic = async (): Promise<TestTopic> => {
    const owner = h.newTenant();
    peer.tenantKeys.set(owner.tenant, [owner.primary, owner.secondary]);
    const topic = h.newTopic(owner);
    await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 0);
    return topic;
  };
  /** every batch id delivered on `default` until none comes within a second, each completed */
  const drain = async (topic: TestTopic): Promise<string[]> => {
    const ids: string[] = [];
    for (;;) {
      const message = await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 1);
      if (!message) return ids;
      ids.push(message.message_id);
      await h.client.complete(topic.sas('listen'), topic.tenant, topic.topic, 'default', message.message_id, message.lock_token);
    }
  };

  it('a batch id published again within the window, on another instance, is 201 duplicate: true and delivered once', async () => {
    const topic = await newTopic();
    const batch = topic.batch();
    await expect(h.client.publish(topic.sas('send'), batch)).resolves.toEqual({ id: batch.id, tenant: topic.tenant, topic: topic.topic });
    await expect(peer.client.publish(topic.sas('send'), batch)).resolves.toEqual({ id: batch.id, tenant: topic.tenant, topic: topic.topic, duplicate: true });
    await expect(h.client.publish(topic.sas('send'), batch)).resolves.toMatchObject({ duplicate: true });
    expect(await drain(topic)).toEqual([batch.id]);
    // the store holds the batch id's mark, never the batch
    const keys = await h.store.keys('duplicates:');
    expect(keys).toEqual([`duplicates:${topic.tenant}:${topic.topic}:${batch.id}`]);
    expect(await h.store.get(keys[0]!)).toBe('accepted');
  });

  it('after the window (the tier’s, 1 s) the batch id is published and delivered again; a window of 0 turns detection off', async () => {
    const topic = await newTopic();
    setFeedDelivery(topic, { duplicate_window_sec: 1 });
    const batch = topic.batch();
    await h.client.publish(topic.sas('send'), batch);
    await expect(peer.client.publish(topic.sas('send'), batch)).resolves.toMatchObject({ duplicate: true });
    await sleep(1200);
    await expect(peer.client.publish(topic.sas('send'), batch)).resolves.not.toHaveProperty('duplicate');
    expect(await drain(topic)).toEqual([batch.id, batch.id]);

    const off = await newTopic();
    setFeedDelivery(off, { duplicate_window_sec: 0 });
    const again = off.batch();
    await h.client.publish(off.sas('send'), again);
    await expect(peer.client.publish(off.sas('send'), again)).resolves.not.toHaveProperty('duplicate');
    expect(await drain(off)).toEqual([again.id, again.id]);
  });

  it('a publish that failed leaves no mark: the retry is published, and delivered once', async () => {
    const topic = await newTopic();
    const batch = topic.batch();
    vi.spyOn(h.broker, 'publish').mockRejectedValueOnce(new BrokerUnavailableError('connection lost'));
    await expectRefusal(h.client.publish(topic.sas('send'), batch), 503, 'temporarily_unavailable');
    await expect(peer.client.publish(topic.sas('send'), batch)).resolves.not.toHaveProperty('duplicate');
    await expect(h.client.publish(topic.sas('send'), batch)).resolves.toMatchObject({ duplicate: true });
    expect(await drain(topic)).toEqual([batch.id]);
  });

  it('a second publish while the first awaits its confirm waits for its outcome: a duplicate once confirmed, 409 publish_in_progress when it takes too long', async () => {
    const topic = await newTopic();
    const publish = h.broker.publish.bind(h.broker);
    let holdMs = 500;
    vi.spyOn(h.broker, 'publish').mockImplementation(async (...args) => {
      await sleep(holdMs);
      return publish(...args);
    });
    const batch = topic.batch();
    const first = h.client.publish(topic.sas('send'), batch);
    await sleep(100);
    await expect(peer.client.publish(topic.sas('send'), batch)).resolves.toMatchObject({ duplicate: true });
    await expect(first).resolves.not.toHaveProperty('duplicate');

    // held longer than the 2.5 s a publish waits for another, and than the claim's 5 s lease: renewed, it holds
    holdMs = 10_000;
    const slow = topic.batch();
    const slowFirst = h.client.publish(topic.sas('send'), slow);
    await sleep(100);
    await expectRefusal(peer.client.publish(topic.sas('send'), slow), 409, 'publish_in_progress');
    await sleep(CLAIM_TTL_MS - 2000);
    await expectRefusal(peer.client.publish(topic.sas('send'), slow), 409, 'publish_in_progress');
    await expect(slowFirst).resolves.not.toHaveProperty('duplicate');
    vi.restoreAllMocks();
    expect(await drain(topic)).toEqual([batch.id, slow.id]);
  });

  it('the claim of an instance that died mid-publish lapses within its lease: a retry elsewhere publishes the batch, once', async () => {
    const topic = await newTopic();
    const batch = topic.batch();
    // what a SIGKILLed instance leaves: its claim, never renewed again
    await h.store.set(`duplicates:${topic.tenant}:${topic.topic}:${batch.id}`, 'claim:dead-instance', { ttlMs: CLAIM_TTL_MS });
    const started = Date.now();
    await expectRefusal(peer.client.publish(topic.sas('send'), batch), 409, 'publish_in_progress');
    // a 409 comes well inside a client's 5 s timeout, with Retry-After
    expect(Date.now() - started).toBeLessThan(4000);
    let published: unknown;
    while (Date.now() - started < CLAIM_TTL_MS + 3000) {
      published = await peer.client.publish(topic.sas('send'), batch).catch((err: unknown) => err);
      if (!(published instanceof Error)) break;
      await sleep(200);
    }
    expect(published).toEqual({ id: batch.id, tenant: topic.tenant, topic: topic.topic });
    expect(await drain(topic)).toEqual([batch.id]);
  });

  it('with the store down the batch id cannot be checked: 503, and nothing is published (fail closed)', async () => {
    const topic = await newTopic();
    const publish = vi.spyOn(h.broker, 'publish');
    vi.spyOn(h.store, 'set').mockRejectedValue(new StoreUnavailableError('redis: connection refused'));
    const refused = await h.client.publish(topic.sas('send'), topic.batch()).catch((err: unknown) => err);
    expect(refused).toMatchObject({ status: 503, code: 'temporarily_unavailable' });
    expect(publish).not.toHaveBeenCalled();
    vi.restoreAllMocks();
    expect(await drain(topic)).toEqual([]);
  });

  it('the tier’s message TTL goes with the batch to the broker (the service default otherwise)', async () => {
    const publish = vi.spyOn(h.broker, 'publish');
    const tiered = await newTopic();
    setFeedDelivery(tiered, { message_ttl_sec: 90 });
    await h.client.publish(tiered.sas('send'), tiered.batch());
    const plain = await newTopic();
    await h.client.publish(plain.sas('send'), plain.batch());
    expect(publish.mock.calls.map(([topic, , options]) => [topic.topic, options.ttlMs])).toEqual([
      [tiered.topic, 90_000],
      [plain.topic, 604_800_000],
    ]);
  });

  it('a tier policy that cannot be looked up is 503 and nothing is published', async () => {
    const topic = await newTopic();
    const publish = vi.spyOn(h.broker, 'publish');
    inventoryUnreachable.add(`${topic.tenant}/${topic.topic}`);
    try {
      await expectRefusal(h.client.publish(topic.sas('send'), topic.batch()), 503, 'temporarily_unavailable');
    } finally {
      inventoryUnreachable.delete(`${topic.tenant}/${topic.topic}`);
    }
    expect(publish).not.toHaveBeenCalled();
    // the `default` subscription needs no inventory to receive from; publishing needs the policy
    await h.client.publish(topic.sas('send'), topic.batch());
    expect(publish).toHaveBeenCalledTimes(1);
  });
});
