import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerUnavailableError, NoSubscriptionError, ReplayStalledError } from './broker.ts';
import type { Broker, Delivery, TopicRef } from './broker.ts';

export interface BrokerHarness {
  create(options?: BrokerTestOptions): Promise<Broker>;
  /** whether two instances share the same queues (RabbitMQ) or each has its own (memory) */
  sharedAcrossInstances: boolean;
  /** messages in the subscription's dead-letter queue */
  deadLetterCount(broker: Broker, topic: TopicRef, subscription: string): Promise<number>;
  /** deletes whatever the backend keeps for these subscriptions */
  cleanup(subscriptions: { topic: TopicRef; subscription: string }[]): Promise<void>;
}

interface BrokerTestOptions {
  maxDeliveries?: number;
  maxQueueLength?: number;
  subscriptionExpiresMs?: number;
  replayStallMs?: number;
}

export const hex = (bytes = 4): string => randomBytes(bytes).toString('hex');

export const newTopic = (): TopicRef => ({ tenant: `t-${hex()}`, topic: `tp-${hex()}` });

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One behaviour suite for every Broker implementation, so both backends keep identical semantics. */
export function brokerContract(name: string, harness: BrokerHarness): void {
  describe(`Broker contract: ${name}`, () => {
    let brokers: Broker[] = [];
    let declared: { topic: TopicRef; subscription: string }[] = [];

    const open = async (options?: BrokerTestOptions): Promise<Broker> => {
      const broker = await harness.create(options);
      brokers.push(broker);
      return broker;
    };
    const declare = async (broker: Broker, topic: TopicRef, subscription: string): Promise<void> => {
      await broker.declareSubscription(topic, subscription);
      declared.push({ topic, subscription });
    };
    const publish = (broker: Broker, topic: TopicRef, text: string, messageId = `m-${hex()}`) => broker.publish(topic, Buffer.from(text), { messageId, contentType: 'text/plain' });
    const mustReceive = async (broker: Broker, topic: TopicRef, subscription: string, waitMs = 3000): Promise<Delivery> => {
      const delivery = await broker.receive(topic, subscription, waitMs);
      if (!delivery) throw new Error(`nothing received from ${subscription} within ${waitMs} ms`);
      return delivery;
    };
    const mustReceiveDeadLetter = async (broker: Broker, topic: TopicRef, subscription: string, waitMs = 3000): Promise<Delivery> => {
      const delivery = await broker.receiveDeadLetter(topic, subscription, waitMs);
      if (!delivery) throw new Error(`nothing received from the dead-letter queue of ${subscription} within ${waitMs} ms`);
      return delivery;
    };

    /** receives and acks until nothing comes: the message ids, in order; each must be a first delivery */
    const receiveAll = async (broker: Broker, topic: TopicRef, subscription: string): Promise<string[]> => {
      const ids: string[] = [];
      for (let delivery = await broker.receive(topic, subscription, 1000); delivery; delivery = await broker.receive(topic, subscription, 300)) {
        expect({ id: delivery.messageId, count: delivery.deliveryCount }).toEqual({ id: delivery.messageId, count: 1 });
        ids.push(delivery.messageId);
        await delivery.ack();
      }
      return ids;
    };
    const publishAll = async (broker: Broker, topic: TopicRef, ids: string[]): Promise<void> => {
      for (const id of ids) await publish(broker, topic, id, id);
    };
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

    afterEach(async () => {
      await Promise.all(brokers.map((b) => b.close()));
      await harness.cleanup(declared);
      brokers = [];
      declared = [];
    });

    it('rejects a publish to a topic without subscription with NoSubscriptionError', async () => {
      const broker = await open();
      const topic = newTopic();
      await expect(publish(broker, topic, 'x')).rejects.toBeInstanceOf(NoSubscriptionError);
      // a subscription of another topic of the same tenant does not count
      await declare(broker, { tenant: topic.tenant, topic: `other-${hex()}` }, 'sub');
      await expect(publish(broker, topic, 'x')).rejects.toBeInstanceOf(NoSubscriptionError);
      // and the broker stays usable after a returned message
      await declare(broker, topic, 'sub');
      await publish(broker, topic, 'y');
      expect((await mustReceive(broker, topic, 'sub')).body.toString()).toBe('y');
    });

    it('delivers body, messageId, contentType and headers as published', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await declare(broker, topic, 'sub'); // idempotent
      const body = Buffer.from(JSON.stringify({ hello: 'world' }));
      await broker.publish(topic, body, {
        messageId: 'batch-1',
        contentType: 'application/json',
        headers: { 'x-source': 'test', attempt: 3, urgent: true },
      });
      const delivery = await mustReceive(broker, topic, 'sub');
      expect(delivery.body.equals(body)).toBe(true);
      expect(delivery.messageId).toBe('batch-1');
      expect(delivery.contentType).toBe('application/json');
      expect(delivery.headers).toEqual({ 'x-source': 'test', attempt: 3, urgent: true });
      expect(delivery.deliveryCount).toBe(1);
      await delivery.ack();
      await delivery.ack(); // settling twice is a no-op
      expect(await broker.receive(topic, 'sub', 200)).toBeNull();
      expect(await broker.depth(topic, 'sub')).toBe(0);
    });

    it('fans a message out to every subscription of the topic', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'one');
      await declare(broker, topic, 'two');
      await publish(broker, topic, 'fan', 'fan-1');
      const [a, b] = await Promise.all([mustReceive(broker, topic, 'one'), mustReceive(broker, topic, 'two')]);
      expect([a.messageId, b.messageId]).toEqual(['fan-1', 'fan-1']);
      await a.ack();
      await b.ack();
      expect(await broker.receive(topic, 'one', 100)).toBeNull();
    });

    it('waits about waitMs and returns null when nothing arrives', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      const started = Date.now();
      expect(await broker.receive(topic, 'sub', 400)).toBeNull();
      const waited = Date.now() - started;
      expect(waited).toBeGreaterThanOrEqual(400 * 0.8);
      expect(waited).toBeLessThan(2000);
    });

    it('a waiting receive returns promptly when a message is published', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      const started = Date.now();
      const waiting = broker.receive(topic, 'sub', 10_000);
      await new Promise((r) => setTimeout(r, 100));
      await publish(broker, topic, 'wake', 'wake-1');
      const delivery = await waiting;
      expect(delivery?.messageId).toBe('wake-1');
      expect(Date.now() - started).toBeLessThan(2000);
      await delivery?.ack();
    });

    it('a receive whose signal aborts resolves null at once and takes nothing', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      const abort = new AbortController();
      const started = Date.now();
      const waiting = broker.receive(topic, 'sub', 10_000, abort.signal);
      const waitingDead = broker.receiveDeadLetter(topic, 'sub', 10_000, abort.signal);
      await new Promise((r) => setTimeout(r, 100));
      abort.abort();
      expect(await waiting).toBeNull();
      expect(await waitingDead).toBeNull();
      expect(Date.now() - started).toBeLessThan(2000);
      // the abandoned wait does not take what comes next
      await publish(broker, topic, 'next', 'next-1');
      expect(await broker.receive(topic, 'sub', 100, abort.signal)).toBeNull();
      const delivery = await mustReceive(broker, topic, 'sub');
      expect(delivery).toMatchObject({ messageId: 'next-1', deliveryCount: 1 });
      await delivery.ack();
    });

    it('preserves the order of sequential publishes', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      const ids = Array.from({ length: 20 }, (_, i) => `order-${i}`);
      for (const id of ids) await publish(broker, topic, id, id);
      const received: string[] = [];
      for (let i = 0; i < ids.length; i++) {
        const delivery = await mustReceive(broker, topic, 'sub');
        received.push(delivery.messageId);
        await delivery.ack();
      }
      expect(received).toEqual(ids);
    });

    it('nack(true) redelivers with deliveryCount 2; ack then removes it', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await publish(broker, topic, 'again', 'again-1');
      const first = await mustReceive(broker, topic, 'sub');
      expect(first.deliveryCount).toBe(1);
      await first.nack(true);
      const second = await mustReceive(broker, topic, 'sub');
      expect(second.messageId).toBe('again-1');
      expect(second.body.toString()).toBe('again');
      expect(second.deliveryCount).toBe(2);
      await first.ack(); // a stale delivery cannot settle the redelivery
      expect(await broker.receive(topic, 'sub', 100)).toBeNull();
      await second.ack();
      expect(await broker.depth(topic, 'sub')).toBe(0);
    });

    it('nack(true) sends a message to the back of its queue', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await publish(broker, topic, 'a', 'a-1');
      await publish(broker, topic, 'b', 'b-1');
      await (await mustReceive(broker, topic, 'sub')).nack(true);
      const next = await mustReceive(broker, topic, 'sub');
      expect(next).toMatchObject({ messageId: 'b-1', deliveryCount: 1 });
      await next.ack();
      const last = await mustReceive(broker, topic, 'sub');
      expect(last).toMatchObject({ messageId: 'a-1', deliveryCount: 2 });
      await last.ack();
    });

    it('release() returns a message without counting a delivery, however often', async () => {
      const broker = await open({ maxDeliveries: 2 });
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await publish(broker, topic, 'kept', 'kept-1');
      for (let i = 0; i < 4; i++) {
        const delivery = await mustReceive(broker, topic, 'sub');
        expect(delivery).toMatchObject({ messageId: 'kept-1', deliveryCount: 1 });
        await delivery.release();
        await delivery.release(); // settling twice is a no-op
      }
      // counted from where release() left it: the second abandon dead-letters it
      await (await mustReceive(broker, topic, 'sub')).nack(true);
      const second = await mustReceive(broker, topic, 'sub');
      expect(second.deliveryCount).toBe(2);
      await second.nack(true);
      expect(await broker.receive(topic, 'sub', 300)).toBeNull();
      await eventually(async () => (await harness.deadLetterCount(broker, topic, 'sub')) === 1, 3000);
      // from the dead-letter queue, too
      const dead = await mustReceiveDeadLetter(broker, topic, 'sub');
      await dead.release();
      expect(await mustReceiveDeadLetter(broker, topic, 'sub')).toMatchObject({ messageId: 'kept-1', deliveryCount: 1 });
    });

    it('dead-letters a message after maxDeliveries requeues', async () => {
      const broker = await open({ maxDeliveries: 3 });
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await publish(broker, topic, 'poison', 'poison-1');
      const counts: number[] = [];
      for (let i = 0; i < 3; i++) {
        const delivery = await mustReceive(broker, topic, 'sub');
        counts.push(delivery.deliveryCount);
        await delivery.nack(true);
      }
      expect(counts).toEqual([1, 2, 3]);
      expect(await broker.receive(topic, 'sub', 300)).toBeNull();
      await eventually(async () => (await harness.deadLetterCount(broker, topic, 'sub')) === 1, 3000);
    });

    it('nack(false) dead-letters at once', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await publish(broker, topic, 'bad', 'bad-1');
      await (await mustReceive(broker, topic, 'sub')).nack(false);
      expect(await broker.receive(topic, 'sub', 200)).toBeNull();
      await eventually(async () => (await harness.deadLetterCount(broker, topic, 'sub')) === 1, 3000);
    });

    it('receiveDeadLetter returns a message dead-lettered after maxDeliveries as published; ack removes it', async () => {
      const broker = await open({ maxDeliveries: 2 });
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      const body = Buffer.from(JSON.stringify({ poison: true }));
      await broker.publish(topic, body, { messageId: 'dead-1', contentType: 'application/json', headers: { 'x-source': 'test', attempt: 1 } });
      for (let i = 0; i < 2; i++) await (await mustReceive(broker, topic, 'sub')).nack(true);
      // no longer delivered on the subscription
      expect(await broker.receive(topic, 'sub', 300)).toBeNull();
      const dead = await mustReceiveDeadLetter(broker, topic, 'sub');
      expect(dead.messageId).toBe('dead-1');
      expect(dead.body.equals(body)).toBe(true);
      expect(dead.contentType).toBe('application/json');
      // the broker's own dead-lettering headers (x-death, ...) are not the publisher's
      expect(dead.headers).toEqual({ 'x-source': 'test', attempt: 1 });
      expect(dead.deliveryCount).toBe(1);
      await dead.ack();
      expect(await broker.receiveDeadLetter(topic, 'sub', 300)).toBeNull();
      expect(await harness.deadLetterCount(broker, topic, 'sub')).toBe(0);
      expect(await broker.receive(topic, 'sub', 100)).toBeNull();
    });

    it('a dead letter nacked with requeue goes back to the dead-letter queue, beyond maxDeliveries', async () => {
      const broker = await open({ maxDeliveries: 2 });
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await publish(broker, topic, 'bad', 'bad-1');
      await (await mustReceive(broker, topic, 'sub')).nack(false);
      const first = await mustReceiveDeadLetter(broker, topic, 'sub');
      expect(first.deliveryCount).toBe(1);
      await first.nack(true);
      const second = await mustReceiveDeadLetter(broker, topic, 'sub');
      expect(second.deliveryCount).toBe(2);
      await second.nack(true);
      const third = await mustReceiveDeadLetter(broker, topic, 'sub');
      expect(third.messageId).toBe('bad-1');
      expect(third.body.toString()).toBe('bad');
      await third.ack();
      expect(await broker.receive(topic, 'sub', 100)).toBeNull();
    });

    it('a waiting receiveDeadLetter returns once a message is dead-lettered, and null after waitMs otherwise', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      const started = Date.now();
      expect(await broker.receiveDeadLetter(topic, 'sub', 300)).toBeNull();
      expect(Date.now() - started).toBeGreaterThanOrEqual(300 * 0.8);
      const waiting = broker.receiveDeadLetter(topic, 'sub', 10_000);
      await publish(broker, topic, 'late', 'late-1');
      await (await mustReceive(broker, topic, 'sub')).nack(false);
      const dead = await waiting;
      expect(dead?.messageId).toBe('late-1');
      await dead?.ack();
    });

    it('depth counts ready messages, not the ones handed out', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      expect(await broker.depth(topic, 'sub')).toBe(0);
      for (let i = 0; i < 3; i++) await publish(broker, topic, `d${i}`);
      expect(await broker.depth(topic, 'sub')).toBe(3);
      const delivery = await mustReceive(broker, topic, 'sub');
      await eventually(async () => (await broker.depth(topic, 'sub')) === 2, 3000);
      await delivery.nack(true);
      await eventually(async () => (await broker.depth(topic, 'sub')) === 3, 3000);
    });

    it('receive and depth of an undeclared subscription reject with NoSubscriptionError', async () => {
      const broker = await open();
      const topic = newTopic();
      await expect(broker.receive(topic, 'missing', 100)).rejects.toBeInstanceOf(NoSubscriptionError);
      await expect(broker.depth(topic, 'missing')).rejects.toBeInstanceOf(NoSubscriptionError);
      await expect(broker.receiveDeadLetter(topic, 'missing', 100)).rejects.toBeInstanceOf(NoSubscriptionError);
      await broker.ping();
    });

    // issue 9: an unread subscription must bound itself and never refuse what its topic's other subscriptions take
    it('a subscription over maxQueueLength dead-letters its oldest messages; the other subscriptions get every message', async () => {
      const broker = await open({ maxQueueLength: 3 });
      const topic = newTopic();
      await declare(broker, topic, 'unread');
      await declare(broker, topic, 'read');
      // the read subscription keeps up: it gets every message, whatever the unread one holds
      const read: string[] = [];
      for (let i = 0; i < 5; i++) {
        await publish(broker, topic, `m${i}`, `m${i}`);
        const delivery = await mustReceive(broker, topic, 'read');
        read.push(delivery.messageId);
        await delivery.ack();
      }
      expect(read).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
      await eventually(async () => (await broker.depth(topic, 'unread')) === 3, 3000);
      await eventually(async () => (await harness.deadLetterCount(broker, topic, 'unread')) === 2, 3000);
      // drop-head: the oldest went to the dead letters, the newest stayed
      expect((await mustReceive(broker, topic, 'unread')).messageId).toBe('m2');
      expect((await mustReceiveDeadLetter(broker, topic, 'unread')).messageId).toBe('m0');
    });

    it('the dead-letter queue is bounded too: beyond maxQueueLength its oldest are dropped', async () => {
      const broker = await open({ maxQueueLength: 2, maxDeliveries: 1 });
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      for (let i = 0; i < 6; i++) await publish(broker, topic, `m${i}`, `m${i}`);
      await eventually(async () => (await harness.deadLetterCount(broker, topic, 'sub')) === 2, 3000);
      expect(await broker.depth(topic, 'sub')).toBe(2);
    });

    it('deleteSubscription deletes both queues and is idempotent', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'gone');
      await declare(broker, topic, 'kept');
      await publish(broker, topic, 'x');
      await broker.deleteSubscription(topic, 'gone');
      await broker.deleteSubscription(topic, 'gone');
      await expect(broker.depth(topic, 'gone')).rejects.toBeInstanceOf(NoSubscriptionError);
      await expect(broker.receive(topic, 'gone', 100)).rejects.toBeInstanceOf(NoSubscriptionError);
      await expect(broker.receiveDeadLetter(topic, 'gone', 100)).rejects.toBeInstanceOf(NoSubscriptionError);
      expect(await broker.depth(topic, 'kept')).toBe(1);
      // declared again, it starts empty
      await declare(broker, topic, 'gone');
      expect(await broker.depth(topic, 'gone')).toBe(0);
    });

    it('a subscription nobody uses expires after subscriptionExpiresMs; declaring it again brings it back', { timeout: 30_000 }, async () => {
      const broker = await open({ subscriptionExpiresMs: 1000 });
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await publish(broker, topic, 'x');
      // looked at less often than the expiry, in case looking counts as using
      const deadline = Date.now() + 20_000;
      for (;;) {
        await new Promise((r) => setTimeout(r, 1500));
        const depth = await broker.depth(topic, 'sub').catch((err: unknown) => err);
        if (depth instanceof NoSubscriptionError) break;
        if (Date.now() > deadline) throw new Error(`the subscription did not expire: ${String(depth)}`);
      }
      // the topic's replay stream keeps what is published meanwhile: a replay brings it back
      const since = Date.now();
      await publish(broker, topic, 'y', 'y-1');
      await declare(broker, topic, 'sub');
      await publish(broker, topic, 'z', 'z-1');
      expect((await mustReceive(broker, topic, 'sub')).messageId).toBe('z-1');
      expect((await broker.replay(topic, 'sub', { time: since })).copied).toBe(2);
      expect(await receiveAll(broker, topic, 'sub')).toEqual(['y-1', 'z-1']);
    });

    // issue 16: the topic's replay stream
    it('replay from a time copies exactly the batches published since, in order, each a first delivery', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      const before = ['a-0', 'a-1', 'a-2', 'a-3'];
      const since = ['b-0', 'b-1', 'b-2'];
      await publishAll(broker, topic, before);
      await sleep(10);
      const middle = Date.now();
      await publishAll(broker, topic, since);
      expect(await receiveAll(broker, topic, 'sub')).toEqual([...before, ...since]);
      const progress: number[] = [];
      const result = await broker.replay(topic, 'sub', { time: middle }, { onProgress: (p) => progress.push(p.copied) });
      // offsets count from 0 in a new topic's stream
      expect(result).toEqual({ copied: 3, firstOffset: 4, lastOffset: 6 });
      expect(progress).toEqual([1, 2, 3]);
      expect(await receiveAll(broker, topic, 'sub')).toEqual(since);
      // a replay from before the first batch copies all of them; receivers see only the publisher's headers
      expect((await broker.replay(topic, 'sub', { time: middle - 60_000 })).copied).toBe(7);
      const first = await mustReceive(broker, topic, 'sub');
      expect({ id: first.messageId, body: first.body.toString(), contentType: first.contentType, headers: first.headers }).toEqual({ id: 'a-0', body: 'a-0', contentType: 'text/plain', headers: {} });
      await first.ack();
      expect(await receiveAll(broker, topic, 'sub')).toEqual([...before.slice(1), ...since]);
    });

    it('replay by offset copies from that offset on; beyond the end, or of an empty range, copies nothing', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await publishAll(broker, topic, ['c-0', 'c-1', 'c-2', 'c-3']);
      expect(await receiveAll(broker, topic, 'sub')).toEqual(['c-0', 'c-1', 'c-2', 'c-3']);
      expect(await broker.replay(topic, 'sub', { offset: 2 })).toEqual({ copied: 2, firstOffset: 2, lastOffset: 3 });
      expect(await receiveAll(broker, topic, 'sub')).toEqual(['c-2', 'c-3']);
      const started = Date.now();
      expect(await broker.replay(topic, 'sub', { offset: 1000 })).toEqual({ copied: 0 });
      expect(await broker.replay(topic, 'sub', { time: Date.now() + 3600_000 })).toEqual({ copied: 0 });
      expect(Date.now() - started).toBeLessThan(5000);
      // the first replay's marker holds offset 4 and is skipped like any marker
      expect(await broker.replay(topic, 'sub', { offset: 3 })).toEqual({ copied: 1, firstOffset: 3, lastOffset: 3 });
      expect(await receiveAll(broker, topic, 'sub')).toEqual(['c-3']);
      // from the beginning of time: all of them, none of the markers
      expect((await broker.replay(topic, 'sub', { time: 0 })).copied).toBe(4);
      expect(await receiveAll(broker, topic, 'sub')).toEqual(['c-0', 'c-1', 'c-2', 'c-3']);
    });

    it('replay stops at its marker while publishes go on', { timeout: 30_000 }, async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      const ids = Array.from({ length: 30 }, (_, i) => `p-${i}`);
      await publishAll(broker, topic, ids);
      let publishing = true;
      let published = ids.length;
      const loop = (async () => {
        while (publishing) {
          await publish(broker, topic, 'live', `live-${published++}`);
          // as a publish over the network does (the memory broker's resolves at once)
          await new Promise((r) => setImmediate(r));
        }
      })();
      const result = await broker.replay(topic, 'sub', { offset: 0 });
      const publishedThen = published;
      publishing = false;
      await loop;
      expect(result.copied).toBeGreaterThanOrEqual(ids.length);
      // nothing published after the replay started and ended: the copy did not run after the publishes
      expect(result.copied).toBeLessThanOrEqual(publishedThen);
      expect(result.firstOffset).toBe(0);
    });

    it('an aborted replay stops early and resolves with what it copied', { timeout: 30_000 }, async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await Promise.all(Array.from({ length: 300 }, (_, i) => publish(broker, topic, 'x', `x-${i}`)));
      const abort = new AbortController();
      const result = await broker.replay(topic, 'sub', { offset: 0 }, { signal: abort.signal, onProgress: () => abort.abort() });
      expect(result.copied).toBeGreaterThanOrEqual(1);
      expect(result.copied).toBeLessThan(300);
      expect(await broker.replay(topic, 'sub', { offset: 0 }, { signal: abort.signal })).toEqual({ copied: 0 });
    });

    it('replay into an undeclared subscription rejects with NoSubscriptionError', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await expect(broker.replay(topic, 'missing', { offset: 0 })).rejects.toBeInstanceOf(NoSubscriptionError);
      await expect(broker.peek(topic, 'missing', 1)).rejects.toBeInstanceOf(NoSubscriptionError);
      await expect(broker.peek(topic, 'missing', 1, { deadLetter: true })).rejects.toBeInstanceOf(NoSubscriptionError);
    });

    it('a replay into a bounded queue waits for its receiver to make room and loses nothing', { timeout: 60_000 }, async () => {
      const broker = await open({ maxQueueLength: 5 });
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      const ids = Array.from({ length: 12 }, (_, i) => `bp-${i}-${hex()}`);
      await publishAll(broker, topic, ids);
      // the queue keeps the newest five, the older seven are pushed out to the dead-letter queue (which keeps five of them)
      expect(await receiveAll(broker, topic, 'sub')).toEqual(ids.slice(7));
      const pushedOut = await harness.deadLetterCount(broker, topic, 'sub');
      expect(pushedOut).toBe(5);
      const replaying = broker.replay(topic, 'sub', { offset: 0 });
      const received: string[] = [];
      while (received.length < ids.length) {
        const delivery = await mustReceive(broker, topic, 'sub', 10_000);
        received.push(delivery.messageId);
        await delivery.ack();
      }
      expect((await replaying).copied).toBe(12);
      expect(received).toEqual(ids);
      // no copy was pushed out of the full queue
      expect(await harness.deadLetterCount(broker, topic, 'sub')).toBe(pushedOut);
    });

    it('a replay into a full queue nobody receives from gives up with ReplayStalledError', { timeout: 30_000 }, async () => {
      const broker = await open({ maxQueueLength: 3, replayStallMs: 800 });
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await publishAll(broker, topic, ['s-1', 's-2', 's-3']);
      const stalled = await broker.replay(topic, 'sub', { offset: 0 }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(stalled).toBeInstanceOf(ReplayStalledError);
      expect(stalled).toMatchObject({ code: 'ERR_REPLAY_STALLED' });
      // nothing was pushed out meanwhile: the queue still holds the three, none dead-lettered
      expect(await harness.deadLetterCount(broker, topic, 'sub')).toBe(0);
      expect(await receiveAll(broker, topic, 'sub')).toEqual(['s-1', 's-2', 's-3']);
    });

    it('replay skips the batches published before notBefore', { timeout: 30_000 }, async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await publishAll(broker, topic, ['old-1', 'old-2']);
      await sleep(30);
      const notBefore = Date.now();
      await sleep(30);
      await publishAll(broker, topic, ['new-1', 'new-2']);
      await receiveAll(broker, topic, 'sub');
      expect(await broker.replay(topic, 'sub', { offset: 0 }, { notBefore })).toMatchObject({ copied: 2 });
      expect(await receiveAll(broker, topic, 'sub')).toEqual(['new-1', 'new-2']);
      expect((await broker.replay(topic, 'sub', { time: 0 }, { notBefore })).copied).toBe(2);
    });

    it('deleteStream forgets what the topic retains; publish needs a subscription again; declaring re-creates it', { timeout: 30_000 }, async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      await broker.deleteSubscription(topic, 'sub');
      // the stream alone keeps a publish
      await publish(broker, topic, 'kept by the stream');
      await broker.deleteStream(topic);
      await broker.deleteStream(topic);
      await expect(publish(broker, topic, 'lost')).rejects.toBeInstanceOf(NoSubscriptionError);
      await declare(broker, topic, 'sub');
      await publish(broker, topic, 'after', 'after-1');
      await receiveAll(broker, topic, 'sub');
      // only what was published after the re-declaration is retained
      expect((await broker.replay(topic, 'sub', { time: 0 })).copied).toBe(1);
      expect(await receiveAll(broker, topic, 'sub')).toEqual(['after-1']);
    });

    it('the stream keeps no more than its retention', { timeout: 30_000 }, async () => {
      const broker = await open();
      const topic = newTopic();
      await broker.declareSubscription(topic, 'sub', { maxAgeSec: 3600, maxBytes: 20_000 });
      declared.push({ topic, subscription: 'sub' });
      const body = 'r'.repeat(1000);
      for (let i = 0; i < 100; i++) await broker.publish(topic, Buffer.from(body), { messageId: `r-${i}` });
      expect(await receiveAll(broker, topic, 'sub')).toHaveLength(100);
      const result = await broker.replay(topic, 'sub', { offset: 0 });
      // whole segments go at once in RabbitMQ: fewer than all, more than none, the newest kept
      expect(result.copied).toBeLessThan(100);
      expect(result.copied).toBeGreaterThanOrEqual(10);
      // the newest, in order, none missing (RabbitMQ's offsets need not count messages: segments hold bookkeeping too)
      const copies = await receiveAll(broker, topic, 'sub');
      expect(copies).toEqual(Array.from({ length: 100 }, (_, i) => `r-${i}`).slice(100 - result.copied));
    });

    it('peek shows the next messages without locking or counting them; a later receive sees the same order and counts', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      expect(await broker.peek(topic, 'sub', 10)).toEqual([]);
      await publishAll(broker, topic, ['k-0', 'k-1', 'k-2']);
      const peeked = await broker.peek(topic, 'sub', 2);
      expect(peeked.map((m) => ({ id: m.messageId, body: m.body.toString(), contentType: m.contentType, count: m.deliveryCount }))).toEqual([
        { id: 'k-0', body: 'k-0', contentType: 'text/plain', count: 1 },
        { id: 'k-1', body: 'k-1', contentType: 'text/plain', count: 1 },
      ]);
      expect((await broker.peek(topic, 'sub', 10)).map((m) => m.messageId)).toEqual(['k-0', 'k-1', 'k-2']);
      expect(await broker.depth(topic, 'sub')).toBe(3);
      // an abandoned one goes to the back with its count: peek shows that too
      await (await mustReceive(broker, topic, 'sub')).nack(true);
      expect((await broker.peek(topic, 'sub', 10)).map((m) => [m.messageId, m.deliveryCount])).toEqual([
        ['k-1', 1],
        ['k-2', 1],
        ['k-0', 2],
      ]);
      const received: [string, number][] = [];
      for (let i = 0; i < 3; i++) {
        const delivery = await mustReceive(broker, topic, 'sub');
        received.push([delivery.messageId, delivery.deliveryCount]);
        await delivery.ack();
      }
      expect(received).toEqual([
        ['k-1', 1],
        ['k-2', 1],
        ['k-0', 2],
      ]);
      expect(await broker.peek(topic, 'sub', 10)).toEqual([]);
    });

    it('peek of the dead-letter queue shows the dead letters', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      expect(await broker.peek(topic, 'sub', 5, { deadLetter: true })).toEqual([]);
      await publish(broker, topic, 'bad', 'bad-1');
      await (await mustReceive(broker, topic, 'sub')).nack(false);
      await eventually(async () => (await broker.peek(topic, 'sub', 5, { deadLetter: true })).length === 1, 3000);
      expect((await broker.peek(topic, 'sub', 5, { deadLetter: true })).map((m) => [m.messageId, m.deliveryCount])).toEqual([['bad-1', 1]]);
      expect((await mustReceiveDeadLetter(broker, topic, 'sub')).deliveryCount).toBe(1);
    });

    it('rejects invalid names', async () => {
      const broker = await open();
      await expect(broker.declareSubscription({ tenant: 'a.b', topic: 'x' }, 's')).rejects.toBeInstanceOf(TypeError);
      await expect(broker.declareSubscription({ tenant: 'a', topic: '#' }, 's')).rejects.toBeInstanceOf(TypeError);
      await expect(broker.publish({ tenant: 'a', topic: '*' }, Buffer.from('x'), { messageId: 'm' })).rejects.toBeInstanceOf(TypeError);
    });

    it('after close(): waiting receives resolve null and calls reject with BrokerUnavailableError', async () => {
      const broker = await open();
      const topic = newTopic();
      await declare(broker, topic, 'sub');
      const waiting = broker.receive(topic, 'sub', 10_000);
      await new Promise((r) => setTimeout(r, 50));
      await broker.close();
      expect(await waiting).toBeNull();
      await expect(publish(broker, topic, 'x')).rejects.toBeInstanceOf(BrokerUnavailableError);
      await expect(broker.receive(topic, 'sub', 10)).rejects.toBeInstanceOf(BrokerUnavailableError);
      await expect(broker.receiveDeadLetter(topic, 'sub', 10)).rejects.toBeInstanceOf(BrokerUnavailableError);
      await expect(broker.depth(topic, 'sub')).rejects.toBeInstanceOf(BrokerUnavailableError);
      await expect(broker.ping()).rejects.toBeInstanceOf(BrokerUnavailableError);
      await broker.close(); // idempotent
    });

    // Only brokers that outlive one client instance can show this; separate memory brokers share nothing.
    if (harness.sharedAcrossInstances)
      it('redelivers an unacked message after the consuming broker closes, without counting that delivery', async () => {
        const broker = await open();
        const topic = newTopic();
        await declare(broker, topic, 'sub');
        await publish(broker, topic, 'held', 'held-1');

        const consumer = await open();
        const held = await mustReceive(consumer, topic, 'sub');
        expect(held.deliveryCount).toBe(1);
        await consumer.close();
        await expect(held.ack()).rejects.toBeInstanceOf(BrokerUnavailableError);

        const again = await mustReceive(broker, topic, 'sub');
        expect(again.messageId).toBe('held-1');
        // the instance that went away may never have handed it to anyone: not a delivery that counts
        expect(again.deliveryCount).toBe(1);
        await again.ack();
      });
  });
}
