import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OAuthError, silentLogger } from '@keyway/kit';
import { createMemoryBroker } from '@keyway/broker';
import { createMemoryStore, createRedisStore } from '@keyway/store';
import { tcpProxy, viaProxy } from '@keyway/testkit/tcp-proxy';
import { subscriptionInventory } from '../delivery/inventory.ts';
import { tierFeedPolicies } from '../delivery/policy.ts';
import { subscriptionRegistry } from '../delivery/subscriptions.ts';
import { BROKERS, expectErrorBody, hex, REDIS_URL, sleep, startTopic, type Harness, type TestTopic } from '../testing/harness.ts';
import { DEPTH_CACHE_MS, publishRateLimit, queueDepthLimit } from './limits.ts';

/** what a quota check threw, as status, code and Retry-After */
async function refusal(check: Promise<void>): Promise<{ status: number; code: string; retryAfter: string | undefined } | undefined> {
  try {
    await check;
    return undefined;
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    return { status: err.status, code: err.code, retryAfter: err.headers['Retry-After'] };
  }
}

describe('publishRateLimit', () => {
  it('admits `burst` batches per window of burst / rate seconds per tenant, then 429 with the seconds left in the window', async () => {
    // 500 ms into a 3 s window
    let now = 999_999_000 + 500;
    const store = createMemoryStore({ prefix: 'rate-test:', now: () => now });
    const admit = publishRateLimit(store, { ratePerSec: 1, burst: 3, now: () => now });
    for (let i = 0; i < 3; i++) await admit('acme');
    expect(await refusal(admit('acme'))).toEqual({ status: 429, code: 'too_many_requests', retryAfter: '3' });
    // per tenant
    await admit('other');
    now += 2000;
    expect(await refusal(admit('acme'))).toEqual({ status: 429, code: 'too_many_requests', retryAfter: '1' });
    // the next window (3 s long) admits again
    now += 600;
    for (let i = 0; i < 3; i++) await admit('acme');
    expect((await refusal(admit('acme')))?.status).toBe(429);
  });

  it('fails closed: 503 temporarily_unavailable with Retry-After when the store cannot count', async () => {
    const store = createMemoryStore({ prefix: 'rate-test:' });
    const admit = publishRateLimit(store, { ratePerSec: 200, burst: 400, now: Date.now });
    await store.close();
    expect(await refusal(admit('acme'))).toEqual({ status: 503, code: 'temporarily_unavailable', retryAfter: '5' });
  });

  it('takes slots from the shared counter in chunks: a fraction of the round trips, and instances together never admit more than the burst', async () => {
    let now = 999_999_000;
    const store = createMemoryStore({ prefix: 'rate-test:', now: () => now });
    const incr = vi.spyOn(store, 'incr');
    const options = { ratePerSec: 200, burst: 400, now: () => now };
    // one instance alone admits exactly the burst, in far fewer store calls than publishes
    const alone = publishRateLimit(store, options);
    const single = await Promise.all(Array.from({ length: 450 }, () => refusal(alone('acme'))));
    expect(single.filter((r) => r === undefined)).toHaveLength(400);
    expect(single.filter((r) => r?.status === 429)).toHaveLength(50);
    expect(incr.mock.calls.length).toBeLessThan(80);
    // three instances sharing the counter, publishing concurrently in the next window
    now += 2000;
    const instances = [publishRateLimit(store, options), publishRateLimit(store, options), publishRateLimit(store, options)];
    const shared = await Promise.all(Array.from({ length: 600 }, (_, i) => refusal((instances[i % 3] as typeof alone)('acme'))));
    const admitted = shared.filter((r) => r === undefined).length;
    // exactly the burst: while publishes wait, every slot an instance took is used (a chunk is left
    // unused only by an instance whose publishes stop before the window ends)
    expect(admitted).toBe(400);
    expect(shared.every((r) => r === undefined || r.status === 429)).toBe(true);
    // the next window admits again
    now += 2000;
    await instances[0]?.('acme');
  });
});

describe('queueDepthLimit', () => {
  const setup = async (maxDepth: number) => {
    let now = 0;
    const memory = createMemoryBroker();
    const depth = vi.spyOn(memory, 'depth');
    const inventory = subscriptionInventory(async () => ({ subscriptions: ['audit'] }), { ttlMs: 0, now: () => now });
    const subscriptions = subscriptionRegistry(
      memory,
      createMemoryStore({ prefix: 'depth-test:' }),
      silentLogger,
      inventory,
      tierFeedPolicies(inventory, { retentionSec: 86_400, retentionBytes: 1_000_000, messageTtlSec: 0, duplicateWindowSec: 0 }),
      () => now,
    );
    const topic = { tenant: 'acme', topic: 'edr' };
    await subscriptions.ensure(topic, 'default');
    return {
      topic,
      memory,
      subscriptions,
      check: queueDepthLimit(memory, subscriptions, { maxDepth, now: () => now }),
      advance: (ms: number) => {
        now += ms;
      },
      depth,
    };
  };

  it('refuses with 429 and Retry-After only while every subscription holds maxDepth ready messages (issue 9)', async () => {
    const t = await setup(2);
    await t.subscriptions.ensure(t.topic, 'audit');
    await t.check(t.topic);
    for (let i = 0; i < 2; i++) await t.memory.publish(t.topic, Buffer.from('x'), { messageId: `m-${i}` });
    t.advance(DEPTH_CACHE_MS);
    expect(await refusal(t.check(t.topic))).toEqual({ status: 429, code: 'too_many_requests', retryAfter: '5' });
    // one subscription read is enough: the full one does not block the producer for it
    for (let i = 0; i < 2; i++) await (await t.memory.receive(t.topic, 'default', 0))!.ack();
    t.advance(DEPTH_CACHE_MS);
    await t.check(t.topic);
    // a recorded subscription whose queue is gone does not count as one that reads
    await t.memory.deleteSubscription(t.topic, 'default');
    t.advance(DEPTH_CACHE_MS);
    expect((await refusal(t.check(t.topic)))?.status).toBe(429);
  });

  it('looks depths up once per DEPTH_CACHE_MS per topic, shared by concurrent publishes', async () => {
    const t = await setup(100);
    await Promise.all(Array.from({ length: 20 }, () => t.check(t.topic)));
    expect(t.depth).toHaveBeenCalledTimes(1);
    t.advance(DEPTH_CACHE_MS - 1);
    await t.check(t.topic);
    expect(t.depth).toHaveBeenCalledTimes(1);
    t.advance(1);
    await t.check(t.topic);
    expect(t.depth).toHaveBeenCalledTimes(2);
  });
});

describe.each(BROKERS)('publish quotas (%s broker)', { timeout: 30_000 }, (kind) => {
  /** 2 batches per second, burst 4: windows of 2 s */
  let limited: Harness;
  /** a second instance sharing limited's store and broker */
  let limitedPeer: Harness;
  /** MAX_QUEUE_DEPTH = 2 */
  let shallow: Harness;
  let shallowPeer: Harness;
  beforeAll(async () => {
    limited = await startTopic(kind, { PUBLISH_RATE_PER_SEC: 2, PUBLISH_BURST: 4 });
    limitedPeer = await startTopic(kind, { PUBLISH_RATE_PER_SEC: 2, PUBLISH_BURST: 4 }, { store: limited.store, broker: limited.broker });
    shallow = await startTopic(kind, { MAX_QUEUE_DEPTH: 2 });
    shallowPeer = await startTopic(kind, { MAX_QUEUE_DEPTH: 2 }, { store: shallow.store, broker: shallow.broker });
  });
  afterAll(async () => {
    // peers first: the others own the shared store and broker
    await Promise.all([limitedPeer.close(), shallowPeer.close()]);
    await Promise.all([limited.close(), shallow.close()]);
  });

  const post = (on: Harness, t: TestTopic, batch = t.batch()) => on.http.post(`/tenants/${t.tenant}/topics/${t.topic}/messages`, batch, { headers: { authorization: t.sas('send') } });
  const subscribe = (on: Harness, t: TestTopic, sub = 'default') => on.client.receive(t.sas('listen'), t.tenant, t.topic, sub, 0);
  /** every batch id waiting on the subscription, completing each */
  const drain = async (on: Harness, t: TestTopic, sub = 'default') => {
    const ids: string[] = [];
    for (let m = await on.client.receive(t.sas('listen'), t.tenant, t.topic, sub, 1); m; m = await on.client.receive(t.sas('listen'), t.tenant, t.topic, sub, 1)) {
      ids.push(m.message_id);
      await on.client.complete(t.sas('listen'), t.tenant, t.topic, sub, m.message_id, m.lock_token);
    }
    return ids;
  };
  /** waits for the start of a rate window, so a test's publishes all fall into one */
  const windowStart = (windowMs: number) => sleep(windowMs - (Date.now() % windowMs) + 50);

  it('over the tenant publish rate: 429 too_many_requests with Retry-After, and the refused batch is never delivered', async () => {
    const owner = limited.newTenant();
    const topic = limited.newTopic(owner);
    await subscribe(limited, topic);
    await windowStart(2000);
    const accepted: string[] = [];
    for (let i = 0; i < 4; i++) {
      const response = await post(limited, topic);
      expect(response.status).toBe(201);
      accepted.push((response.data as { id: string }).id);
    }
    const refused = topic.batch();
    const response = await post(limited, topic, refused);
    expectErrorBody(response, 429, 'too_many_requests');
    expect(response.data.error_description).toMatch(/2 batches per second/);
    const retryAfter = Number(response.headers['retry-after']);
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 2).toBe(true);
    // the quota is the tenant's: another tenant's topic is not affected
    const other = limited.newTopic();
    expect((await post(limited, other)).status).toBe(201);
    expect(await drain(limited, topic)).toEqual(accepted);
    // once the window is over, the tenant publishes again
    await sleep(retryAfter * 1000);
    expect((await post(limited, topic)).status).toBe(201);
    expect(await drain(limited, topic)).not.toContain(refused.id);
  });

  it('counts one tenant across instances through the store', async () => {
    const owner = limited.newTenant();
    const topic = limited.newTopic(owner);
    limitedPeer.tenantKeys.set(owner.tenant, [owner.primary, owner.secondary]);
    await subscribe(limited, topic);
    await windowStart(2000);
    for (const on of [limited, limitedPeer, limited, limitedPeer]) expect((await post(on, topic)).status).toBe(201);
    expectErrorBody(await post(limitedPeer, topic), 429, 'too_many_requests');
    expectErrorBody(await post(limited, topic), 429, 'too_many_requests');
    expect(await drain(limited, topic)).toHaveLength(4);
  });

  // issue 9: one unconsumed subscription blocked all publishing to its topic once it reached the depth quota
  it('issue 9: an unread subscription at MAX_QUEUE_DEPTH does not block publishing; the read one gets every batch, the unread one overflows to its dead letters', async () => {
    const owner = shallow.newTenant();
    const topic = shallow.newTopic(owner, ['default', 'audit']);
    await subscribe(shallow, topic);
    // declared and never received from, as an abandoned subscription is (no consumer holds prefetched
    // copies), and recorded as the registry records it, so every instance's depth check sees it
    await shallow.broker.declareSubscription(topic, 'audit');
    await shallow.store.sadd(`subscriptions:${topic.tenant}:${topic.topic}`, 'audit');
    const published: string[] = [];
    const read: string[] = [];
    for (let i = 0; i < 6; i++) {
      // past the depth cache, so each publish sees the depths as they are
      if (i >= 2) await sleep(DEPTH_CACHE_MS + 50);
      const response = await post(shallow, topic);
      expect(response.status).toBe(201);
      published.push((response.data as { id: string }).id);
      read.push(...(await drain(shallow, topic)));
    }
    expect(read).toEqual(published);
    // the unread subscription holds the newest two; the oldest went to its dead letters (bounded alike)
    expect(await drain(shallow, topic, 'audit')).toEqual(published.slice(4));
    const dead: string[] = [];
    for (
      let m = await shallow.client.deadLetter.receive(topic.sas('listen'), topic.tenant, topic.topic, 'audit', 2);
      m;
      m = await shallow.client.deadLetter.receive(topic.sas('listen'), topic.tenant, topic.topic, 'audit', 1)
    ) {
      dead.push(m.message_id);
      await shallow.client.deadLetter.complete(topic.sas('listen'), topic.tenant, topic.topic, 'audit', m.message_id, m.lock_token);
    }
    expect(dead).toEqual(published.slice(2, 4));
  });

  it('when every subscription is full (nobody reads): 429 with Retry-After; an instance that never saw one of them agrees', async () => {
    const owner = shallow.newTenant();
    const topic = shallow.newTopic(owner, ['default', 'audit']);
    shallowPeer.tenantKeys.set(owner.tenant, [owner.primary, owner.secondary]);
    await subscribe(shallow, topic);
    await subscribe(shallow, topic, 'audit');
    for (let i = 0; i < 2; i++) expect((await post(shallow, topic)).status).toBe(201);
    await sleep(DEPTH_CACHE_MS + 100);
    const refused = topic.batch();
    const response = await post(shallow, topic, refused);
    expectErrorBody(response, 429, 'too_many_requests');
    expect(response.headers['retry-after']).toBe('5');
    expect(response.data.error_description).toMatch(/every subscription of the topic is full \(default holds 2 ready messages, the most allowed is 2\)/);
    expectErrorBody(await post(shallowPeer, topic, refused), 429, 'too_many_requests');
    // one subscription read again is enough, on either instance
    expect(await drain(shallow, topic, 'audit')).toHaveLength(2);
    await sleep(DEPTH_CACHE_MS + 100);
    expect((await post(shallowPeer, topic)).status).toBe(201);
    expect(await drain(shallow, topic, 'audit')).not.toContain(refused.id);
  });
});

describe.each(BROKERS)('publish with the store down (%s broker)', { timeout: 30_000 }, (kind) => {
  it('answers 503 temporarily_unavailable with Retry-After (fail closed), delivers nothing, is not ready, and recovers', async () => {
    const target = new URL(REDIS_URL);
    const proxy = await tcpProxy(target.hostname, Number(target.port || 6379));
    const store = await createRedisStore({ url: viaProxy(REDIS_URL, proxy), prefix: `keyway-test:topic-${hex(6)}:` });
    const h = await startTopic(kind, {}, { store });
    try {
      const topic = h.newTopic();
      await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 0);
      expect((await h.http.post(`/tenants/${topic.tenant}/topics/${topic.topic}/messages`, topic.batch(), { headers: { authorization: topic.sas('send') } })).status).toBe(201);
      expect((await h.http.get('/readyz')).status).toBe(200);

      await proxy.cut();
      const refused = topic.batch();
      const response = await h.http.post(`/tenants/${topic.tenant}/topics/${topic.topic}/messages`, refused, { headers: { authorization: topic.sas('send') } });
      expectErrorBody(response, 503, 'temporarily_unavailable');
      expect(response.headers['retry-after']).toBe('5');
      const ready = await h.http.get('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.data.checks).toContainEqual({ name: 'store', ok: false });
      // receiving does not need the store
      const first = await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 1);
      expect(first).not.toBeNull();
      await h.client.complete(topic.sas('listen'), topic.tenant, topic.topic, 'default', first!.message_id, first!.lock_token);
      expect(await h.client.receive(topic.sas('listen'), topic.tenant, topic.topic, 'default', 1)).toBeNull();

      await proxy.restore();
      const deadline = Date.now() + 10_000;
      let status = 0;
      while (status !== 201 && Date.now() < deadline) {
        status = (await h.http.post(`/tenants/${topic.tenant}/topics/${topic.topic}/messages`, topic.batch(), { headers: { authorization: topic.sas('send') } })).status;
        if (status !== 201) await sleep(200);
      }
      expect(status).toBe(201);
    } finally {
      await h.close();
      const keys = await store.keys('');
      if (keys.length > 0) await store.del(...keys);
      await store.close();
      await proxy.cut();
    }
  });
});
