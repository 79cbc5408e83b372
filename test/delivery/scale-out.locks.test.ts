import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, type TopicClient } from '@keyway/clients';
import type { ReceivedMessage } from '@keyway/contracts';
import { NoSubscriptionError } from '@keyway/broker';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

/**
 * Issue 12, scale out: two (and three) topic-service instances share RabbitMQ and Redis, as behind a
 * load balancer. A lock is held by the instance that handed the batch out; any instance settles it
 * (passed on over mTLS), and a lock whose instance is gone is lost (410 lock_lost) and the batch
 * comes back, as Azure Service Bus answers MessageLockLost. A subscription exists from its creation.
 */
let suite: Suite;
/** the suite's own topic instance */
let a: TopicClient;
/** a second instance */
let b: TopicClient;
let bUrl: string;
let closeB: () => Promise<void>;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, topic: { subscriptionCacheSec: 0 } });
  a = suite.topic;
  const second = await suite.addTopicInstance();
  b = second.topic;
  bUrl = second.url;
  closeB = second.close;
}, 120_000);
afterAll(async () => {
  await closeB?.();
  await suite?.close();
});

async function feed() {
  const t = await provisionTenant(suite);
  const { refresh_token } = await suite.pas.password(t.email, PASSWORD);
  const { sas_key: key } = await suite.pac.sas({ refresh_token, rights: 'listen-send' });
  let seq = 0;
  return {
    ...t,
    key,
    publish: async (via: TopicClient = a) => {
      const batch = makeBatch(t.tenant, t.feed, seq++);
      await via.publish(key, batch);
      return batch;
    },
    receive: (via: TopicClient, timeoutSec = 5, subscription = 'default') => via.receive(key, t.tenant, t.feed, subscription, timeoutSec),
    complete: (via: TopicClient, m: ReceivedMessage, subscription = 'default') => via.complete(key, t.tenant, t.feed, subscription, m.message_id, m.lock_token),
    abandon: (via: TopicClient, m: ReceivedMessage) => via.abandon(key, t.tenant, t.feed, 'default', m.message_id, m.lock_token),
    renew: (via: TopicClient, m: ReceivedMessage) => via.renewLock(key, t.tenant, t.feed, 'default', m.message_id, m.lock_token),
  };
}
type Feed = Awaited<ReturnType<typeof feed>>;

/** publishes one batch and receives it on `via`, locked there */
/** An instance listed as instances list themselves, at a port nothing listens on: its id. */
async function listSilentInstance(): Promise<string> {
  const silent = randomBytes(6).toString('hex');
  await suite.stores.topic.set(`instances:${silent}`, 'https://127.0.0.1:9', { ttlMs: 60_000 });
  return silent;
}

/** A batch locked on a third instance that then closed: the message as that instance handed it out. */
async function lockedOnClosedInstance(f: Feed): Promise<ReceivedMessage> {
  const third = await suite.addTopicInstance();
  const m = await lockedOn(f, third.topic);
  await third.close();
  return m;
}

async function lockedOn(f: Feed, via: TopicClient): Promise<ReceivedMessage> {
  const batch = await f.publish();
  const m = await f.receive(via);
  expect(m).toMatchObject({ message_id: batch.id, delivery_count: 1 });
  return m!;
}

const refusal = (call: Promise<unknown>) =>
  call.then(
    () => 'settled',
    (err: unknown) => (err instanceof ApiError ? { status: err.status, code: err.code } : Promise.reject(err)),
  );
const LOCK_LOST = { status: 410, code: 'lock_lost' };

/** a lock token of the instance with this 48-bit id (the token's first 12 hex digits), otherwise random */
const tokenOf = (instance: string) => `${instance.slice(0, 8)}-${instance.slice(8)}${randomUUID().slice(13)}`;

describe('issue 12: any topic instance settles any lock', { timeout: 60_000 }, () => {
  it('a batch received on A is completed through B: gone for good, and its lock settles nothing more on either', async () => {
    const f = await feed();
    const m = await lockedOn(f, a);
    await f.complete(b, m);
    expect(await f.receive(a, 1)).toBeNull();
    expect(await f.receive(b, 1)).toBeNull();
    expect(await refusal(f.complete(a, m))).toEqual(LOCK_LOST);
    expect(await refusal(f.complete(b, m))).toEqual(LOCK_LOST);
  });

  it('a batch received on B is abandoned through A: delivered again at once, delivery_count 2', async () => {
    const f = await feed();
    const m = await lockedOn(f, b);
    await f.abandon(a, m);
    // back in the queue, and taken again by B's consumer, whose prefetch buffer the next receive on B reads
    const again = await f.receive(b);
    expect(again).toMatchObject({ message_id: m.message_id, delivery_count: 2 });
    await f.complete(a, again!);
  });

  it('a lock held by A is renewed through B past its first deadline, then completed through B', async () => {
    const short = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, topic: { lockDurationSec: 4, subscriptionCacheSec: 0 } });
    const second = await short.addTopicInstance();
    try {
      const t = await provisionTenant(short);
      const { refresh_token } = await short.pas.password(t.email, PASSWORD);
      const { sas_key: key } = await short.pac.sas({ refresh_token, rights: 'listen-send' });
      await short.topic.publish(key, makeBatch(t.tenant, t.feed, 1));
      const m = (await short.topic.receive(key, t.tenant, t.feed, 'default', 5))!;
      await sleep(2500);
      const renewed = await rawClient(short, 'topic').post(`/tenants/${t.tenant}/topics/${t.feed}/subscriptions/default/messages/${m.message_id}/${m.lock_token}`, undefined, {
        baseURL: second.url,
        headers: { authorization: key },
      });
      expect(renewed.status).toBe(200);
      expect(Date.parse((renewed.data as { locked_until: string }).locked_until)).toBeGreaterThan(Date.parse(m.locked_until) + 1000);
      await sleep(2000);
      // past the first deadline: still locked, on neither instance handed out again
      expect(await short.topic.receive(key, t.tenant, t.feed, 'default', 0)).toBeNull();
      expect(await second.topic.receive(key, t.tenant, t.feed, 'default', 0)).toBeNull();
      await second.topic.complete(key, t.tenant, t.feed, 'default', m.message_id, m.lock_token);
      // past the renewed deadline too: completed, so never delivered again
      await sleep(3000);
      expect(await short.topic.receive(key, t.tenant, t.feed, 'default', 0)).toBeNull();
    } finally {
      await second.close();
      await short.close();
    }
  });

  it('completing through B gives the stream on A its credit back', async () => {
    const f = await feed();
    const stream = a.stream(f.key, f.tenant, f.feed, 'default', { prefetch: 1, timeoutSec: 20 });
    const [first, second] = [await f.publish(), await f.publish()];
    const m1 = (await stream.next()).value as ReceivedMessage;
    expect(m1.message_id).toBe(first.id);
    await f.complete(b, m1);
    const m2 = (await stream.next()).value as ReceivedMessage;
    expect(m2.message_id).toBe(second.id);
    await f.complete(b, m2);
    await stream.return(undefined);
  });

  it('the holding instance still checks the scope: another message, queue, subscription or tenant is 410 and leaves the lock alone', async () => {
    const f = await feed();
    const other = await feed();
    const m = await lockedOn(f, a);
    expect(await refusal(b.complete(f.key, f.tenant, f.feed, 'default', 'b-other', m.lock_token))).toEqual(LOCK_LOST);
    expect(await refusal(b.deadLetter.complete(f.key, f.tenant, f.feed, 'default', m.message_id, m.lock_token))).toEqual(LOCK_LOST);
    expect(await refusal(b.complete(f.key, f.tenant, f.feed, 'siem', m.message_id, m.lock_token))).toEqual(LOCK_LOST);
    expect(await refusal(b.complete(other.key, other.tenant, other.feed, 'default', m.message_id, m.lock_token))).toEqual(LOCK_LOST);
    await f.complete(b, m);
  });

  it('a forged lock token naming an instance that does not exist is 410 lock_lost', async () => {
    const f = await feed();
    const m = await lockedOn(f, a);
    const forged = tokenOf(randomBytes(6).toString('hex'));
    expect(await refusal(b.complete(f.key, f.tenant, f.feed, 'default', m.message_id, forged))).toEqual(LOCK_LOST);
    expect(await refusal(a.renewLock(f.key, f.tenant, f.feed, 'default', m.message_id, forged))).toEqual(LOCK_LOST);
    await f.complete(b, m);
  });

  it('an instance that is listed but does not answer has lost its locks: 410 lock_lost', async () => {
    const f = await feed();
    const m = await lockedOn(f, a);
    const silent = await listSilentInstance();
    expect(await refusal(b.abandon(f.key, f.tenant, f.feed, 'default', m.message_id, tokenOf(silent)))).toEqual(LOCK_LOST);
    await f.complete(a, m);
  });

  it('a lock of an instance that closed is 410 lock_lost on the others, and its batch comes back', async () => {
    const f = await feed();
    const m = await lockedOnClosedInstance(f);
    expect(await refusal(f.complete(a, m))).toEqual(LOCK_LOST);
    expect(await refusal(f.renew(b, m))).toEqual(LOCK_LOST);
    const again = await f.receive(b);
    // the instance went away, not the client: the batch comes back uncounted (faults.crash-loop)
    expect(again).toMatchObject({ message_id: m.message_id, delivery_count: 1 });
    await f.complete(a, again!);
  });

  it('a batch complete whose locks are held by both instances completes them all, through either', async () => {
    const f = await feed();
    const onA: ReceivedMessage[] = [];
    const onB: ReceivedMessage[] = [];
    // long polls waiting on both instances while batches are published: RabbitMQ hands them to both consumers in turn
    for (let round = 0; round < 10 && (onA.length < 3 || onB.length < 3); round++) {
      const waiting = [f.receive(a, 3), f.receive(b, 3)];
      await sleep(300);
      await f.publish();
      await f.publish();
      const [fromA, fromB] = await Promise.all(waiting);
      if (fromA) onA.push(fromA);
      if (fromB) onB.push(fromB);
    }
    expect({ onA: onA.length, onB: onB.length }).toEqual({ onA: 3, onB: 3 });
    const held = [onA[0]!, onB[0]!, onA[1]!, onB[1]!, onA[2]!, onB[2]!];
    const locks = held.map(({ message_id, lock_token }) => ({ message_id, lock_token }));
    for (const [via, half] of [
      [b, locks.slice(0, 4)],
      [a, locks.slice(4)],
    ] as const) {
      expect(await via.completeMany(f.key, f.tenant, f.feed, 'default', half)).toEqual(half.map((lock) => ({ ...lock, status: 'completed' })));
    }
    // completed where each was held: no lock settles anything more, and none of them comes back
    for (const m of held) expect(await refusal(f.renew(onA.includes(m) ? a : b, m))).toEqual(LOCK_LOST);
    const completed = new Set(held.map((m) => m.message_id));
    for (const via of [a, b]) {
      for (let m = await f.receive(via, 1); m; m = await f.receive(via, 1)) {
        expect(completed.has(m.message_id)).toBe(false);
        await f.complete(via, m);
      }
    }
  });

  it('in a batch complete, the locks of a gone, an unlisted and a silent instance are lock_lost and the held one completes', async () => {
    const f = await feed();
    const gone = await lockedOnClosedInstance(f);
    // the gone instance's batch comes back (uncounted: the instance went away, not the client), locked on A now
    const held = (await f.receive(a))!;
    expect(held).toMatchObject({ message_id: gone.message_id, delivery_count: 1 });
    const silent = await listSilentInstance();
    const locks = [
      { message_id: gone.message_id, lock_token: gone.lock_token },
      { message_id: held.message_id, lock_token: held.lock_token },
      { message_id: held.message_id, lock_token: tokenOf(silent) },
      { message_id: held.message_id, lock_token: tokenOf(randomBytes(6).toString('hex')) },
    ];
    const results = await b.completeMany(f.key, f.tenant, f.feed, 'default', locks);
    expect(results.map((r) => r.status)).toEqual(['lock_lost', 'completed', 'lock_lost', 'lock_lost']);
    expect(await f.receive(a, 1)).toBeNull();
    expect(await f.receive(b, 1)).toBeNull();
  });

  it('the internal settle route answers the topic service’s certificate only, and never passes a settle on again', async () => {
    const f = await feed();
    const m = await lockedOn(f, a);
    const path = `/internal/v1/locks/${m.lock_token}`;
    const body = { action: 'complete', tenant: f.tenant, topic: f.feed, subscription: 'default', deadLetter: false, messageId: m.message_id };
    for (const caller of ['pac', 'entitlement', 'audit', 'operator']) expect((await rawClient(suite, 'topic', caller).post(path, body)).status).toBe(403);
    expect((await rawClient(suite, 'topic').post(path, body)).status).toBe(401);
    // B does not hold the lock: passed on to B directly, it is lost there rather than passed on to A
    const atB = await rawClient(suite, 'topic', 'topic').post(path, body, { baseURL: bUrl });
    expect(atB.status).toBe(410);
    expect((await rawClient(suite, 'topic', 'topic').post(path, body)).data).toEqual({});
    expect(await f.receive(b, 1)).toBeNull();
  });
});

describe('issue 12: a subscription exists from the moment it is created', { timeout: 60_000 }, () => {
  it('batches published after createSubscription and before the first receive all reach it', async () => {
    const f = await feed();
    await suite.operator.createSubscription(f.tenant, f.feed, 'siem');
    const published = new Set<string>();
    for (let i = 0; i < 40; i++) published.add((await f.publish(i % 2 === 0 ? a : b)).id);
    const seen = new Set<string>();
    // received from one instance (whose consumer prefetches the queue), completed through both
    for (let m = await f.receive(b, 5, 'siem'); m; m = await f.receive(b, 2, 'siem')) {
      seen.add(m.message_id);
      await f.complete(seen.size % 2 === 0 ? a : b, m, 'siem');
    }
    expect(seen).toEqual(published);
  });

  it('the topic service declares only what the inventory lists, and only for the entitlement service’s certificate', async () => {
    const f = await feed();
    const path = `/internal/v1/tenants/${f.tenant}/topics/${f.feed}/subscriptions/unlisted`;
    expect((await rawClient(suite, 'topic', 'entitlement').put(path)).data).toEqual({ error: 'subscription_not_found', error_description: expect.any(String) });
    for (const caller of ['topic', 'audit', 'operator']) expect((await rawClient(suite, 'topic', caller).put(path)).status).toBe(403);
    const declared = await suite.broker.depth({ tenant: f.tenant, topic: f.feed }, 'unlisted').then(
      () => true,
      (err: unknown) => (err instanceof NoSubscriptionError ? false : Promise.reject(err)),
    );
    expect(declared).toBe(false);
  });

  it('creating a subscription while the topic service cannot declare it is 503, and lists nothing', async () => {
    const f = await feed();
    const restarting = suite.restartTopic({ downMs: 4000 });
    await sleep(1500);
    // the suite's entitlement service reaches the suite's own topic instance, which is down now
    const err = await suite.operator.createSubscription(f.tenant, f.feed, 'late').catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, code: 'temporarily_unavailable' });
    expect((await suite.operator.listSubscriptions(f.tenant, f.feed)).subscriptions).toEqual([]);
    await restarting;
    expect((await suite.operator.createSubscription(f.tenant, f.feed, 'late')).created).toBe(true);
    await f.publish(b);
    expect(await f.receive(a, 5, 'late')).toMatchObject({ delivery_count: 1 });
  });
});
