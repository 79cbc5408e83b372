import { tcpProxy, viaProxy } from '@keyway/testkit/tcp-proxy';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerContract, hex, newTopic } from './broker.contract.ts';
import type { BrokerHarness } from './broker.contract.ts';
import { deadLetterContract } from './dead-letters.contract.ts';
import { BrokerUnavailableError, createAmqpBroker, createBroker, createMemoryBroker, deadLetterQueue, streamQueue, subscriptionQueue } from './index.ts';
import type { Broker, MemoryBroker, QueueType } from './index.ts';

const AMQP_URL = process.env.KEYWAY_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const run = promisify(execFile);

/** The test's own connection, to inspect and delete queues behind the broker's back. */
let admin: amqp.ChannelModel;
beforeAll(async () => {
  admin = await amqp.connect(AMQP_URL);
});
afterAll(async () => {
  await admin.close();
});

/** one channel per call: checkQueue of a missing queue closes the channel it ran on */
async function withChannel<T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> {
  const ch = await admin.createChannel();
  ch.on('error', () => undefined);
  try {
    return await fn(ch);
  } finally {
    await ch.close().catch(() => undefined);
  }
}

async function deleteQueues(subscriptions: { topic: { tenant: string; topic: string }; subscription: string }[]): Promise<void> {
  await withChannel(async (ch) => {
    for (const { topic, subscription } of subscriptions) {
      const queue = subscriptionQueue(topic, subscription);
      await ch.deleteQueue(queue);
      await ch.deleteQueue(deadLetterQueue(queue));
      await ch.deleteQueue(streamQueue(topic));
    }
  });
}

function amqpHarness(queueType: QueueType): BrokerHarness {
  return {
    create: (options) => createAmqpBroker({ url: AMQP_URL, queueType, ...options }),
    sharedAcrossInstances: true,
    deadLetterCount: (_broker, topic, subscription) => withChannel(async (ch) => (await ch.checkQueue(deadLetterQueue(subscriptionQueue(topic, subscription)))).messageCount),
    cleanup: deleteQueues,
  };
}

const memoryHarness: BrokerHarness = {
  create: async (options) => createMemoryBroker(options),
  sharedAcrossInstances: false,
  deadLetterCount: async (broker, topic, subscription) => (broker as MemoryBroker).deadLetters(topic, subscription).length,
  cleanup: async () => undefined,
};
brokerContract('memory', memoryHarness);
brokerContract('amqp quorum', amqpHarness('quorum'));
brokerContract('amqp classic', amqpHarness('classic'));
deadLetterContract('memory', memoryHarness);
deadLetterContract('amqp quorum', amqpHarness('quorum'));
deadLetterContract('amqp classic', amqpHarness('classic'));

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** resolves once ping succeeds; until then ping must fail with BrokerUnavailableError */
async function waitForPing(broker: Broker, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await broker.ping();
      return;
    } catch (err) {
      expect(err).toBeInstanceOf(BrokerUnavailableError);
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * A proxy in front of RabbitMQ that the test can cut (connections reset, port refused) and restore,
 * or pause (bytes silently dropped, like a half-dead network path).
 */
async function amqpProxy() {
  const target = new URL(AMQP_URL);
  const proxy = await tcpProxy(target.hostname, Number(target.port || 5672));
  return { ...proxy, url: viaProxy(AMQP_URL, proxy) };
}

/** Closes our connection from the RabbitMQ side, as an operator or a broker restart would. */
async function dropConnection(connectionName: string): Promise<void> {
  const { stdout } = await run('rabbitmqctl', ['list_connections', '-q', 'pid', 'client_properties']);
  const line = stdout.split('\n').find((l) => l.includes(`{"connection_name","${connectionName}"}`));
  const pid = line?.split('\t')[0];
  if (!pid) throw new Error(`connection ${connectionName} not found:\n${stdout}`);
  await run('rabbitmqctl', ['close_connection', pid, 'keyway broker test']);
}

describe('amqp broker connection handling', () => {
  it('rejects creation with BrokerUnavailableError when nothing listens', async () => {
    const started = Date.now();
    await expect(createAmqpBroker({ url: 'amqp://guest:guest@127.0.0.1:5699' })).rejects.toBeInstanceOf(BrokerUnavailableError);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('reconnects by itself after the broker drops the connection and redelivers unacked messages', { timeout: 30_000 }, async () => {
    const connectionName = `keyway-test-${hex()}`;
    const errors: Error[] = [];
    const broker = await createAmqpBroker({ url: AMQP_URL, connectionName, onError: (e) => errors.push(e) });
    const topic = newTopic();
    try {
      await broker.declareSubscription(topic, 'sub');
      await broker.publish(topic, Buffer.from('before'), { messageId: 'before-1' });
      const held = await broker.receive(topic, 'sub', 3000);
      expect(held?.messageId).toBe('before-1');

      await dropConnection(connectionName);
      await until(() => errors.some((e) => e.message.includes('connection to rabbitmq lost')), 5000);
      // its channel is gone, and RabbitMQ has requeued the message
      await expect(held?.ack()).rejects.toBeInstanceOf(BrokerUnavailableError);
      await waitForPing(broker, 10_000);

      const again = await broker.receive(topic, 'sub', 5000);
      expect(again?.messageId).toBe('before-1');
      expect(again?.body.toString()).toBe('before');
      // a return caused by the lost connection does not count
      expect(again?.deliveryCount).toBe(1);
      await again?.ack();

      await broker.publish(topic, Buffer.from('after'), { messageId: 'after-1' });
      const after = await broker.receive(topic, 'sub', 3000);
      expect(after?.messageId).toBe('after-1');
      await after?.ack();
    } finally {
      await broker.close();
      await deleteQueues([{ topic, subscription: 'sub' }]);
    }
  });

  it('rejects calls with BrokerUnavailableError while RabbitMQ is unreachable and recovers after', { timeout: 30_000 }, async () => {
    const proxy = await amqpProxy();
    const errors: Error[] = [];
    const broker = await createAmqpBroker({ url: proxy.url, onError: (e) => errors.push(e) });
    const topic = newTopic();
    try {
      await broker.declareSubscription(topic, 'sub');
      await proxy.cut();
      await until(() => errors.some((e) => e.message.includes('connection to rabbitmq lost')), 5000);

      const started = Date.now();
      await expect(broker.publish(topic, Buffer.from('x'), { messageId: 'down' })).rejects.toBeInstanceOf(BrokerUnavailableError);
      await expect(broker.receive(topic, 'sub', 100)).rejects.toBeInstanceOf(BrokerUnavailableError);
      await expect(broker.depth(topic, 'sub')).rejects.toBeInstanceOf(BrokerUnavailableError);
      await expect(broker.ping()).rejects.toBeInstanceOf(BrokerUnavailableError);
      await expect(broker.declareSubscription(topic, 'other')).rejects.toBeInstanceOf(BrokerUnavailableError);
      expect(Date.now() - started).toBeLessThan(500);
      // several reconnect attempts fail while the port refuses connections
      await new Promise((r) => setTimeout(r, 1000));

      await proxy.restore();
      await waitForPing(broker, 10_000);
      await broker.publish(topic, Buffer.from('up'), { messageId: 'up-1' });
      const delivery = await broker.receive(topic, 'sub', 3000);
      expect(delivery?.messageId).toBe('up-1');
      await delivery?.ack();
    } finally {
      await broker.close();
      await proxy.cut();
      await deleteQueues([{ topic, subscription: 'sub' }]);
    }
  });

  it('with several node URLs: connects to the first that answers, moves to another when its node goes, and never names a password', { timeout: 30_000 }, async () => {
    // two ways to the one RabbitMQ stand for two nodes of a cluster; the URL before them answers nothing
    const [a, b] = [await amqpProxy(), await amqpProxy()];
    const dead = 'amqp://guest:s3cret-pw@127.0.0.1:5699';
    const errors: Error[] = [];
    await a.cut();
    const broker = await createAmqpBroker({ url: `${dead}, ${a.url},${b.url}`, onError: (e) => errors.push(e) });
    const topic = newTopic();
    try {
      await broker.declareSubscription(topic, 'sub');
      await broker.publish(topic, Buffer.from('via b'), { messageId: 'b-1' });
      expect((await broker.receive(topic, 'sub', 3000))?.messageId).toBe('b-1');
      // b goes and a is back: the broker finds a by itself (a receive waiting meanwhile is served after)
      await a.restore();
      const waiting = broker.receive(topic, 'sub', 10_000);
      await b.cut();
      await until(() => errors.some((e) => e.message.includes(`connection to rabbitmq lost (${new URL(b.url).protocol}//${new URL(b.url).host})`)), 5000);
      await waitForPing(broker, 10_000);
      await broker.publish(topic, Buffer.from('via a'), { messageId: 'a-1' });
      const redelivered = new Set<string>();
      for (let delivery = await waiting; delivery; delivery = await broker.receive(topic, 'sub', 1000)) {
        redelivered.add(delivery.messageId);
        await delivery.ack();
      }
      // b-1 was never acked (its channel died with b), so it comes again
      expect([...redelivered].sort()).toEqual(['a-1', 'b-1']);
      const said = errors.map((e) => `${e.message} ${e.cause instanceof Error ? e.cause.message : ''}`).join('\n');
      expect(said).not.toMatch(/s3cret|guest:guest/);
    } finally {
      await broker.close();
      await a.cut();
      await b.cut();
      await deleteQueues([{ topic, subscription: 'sub' }]);
    }
  });

  it('a publish on a connection that stopped answering rejects after the confirm timeout', { timeout: 30_000 }, async () => {
    const proxy = await amqpProxy();
    const broker = await createAmqpBroker({ url: proxy.url, confirmTimeoutMs: 300 });
    const topic = newTopic();
    try {
      await broker.declareSubscription(topic, 'sub');
      proxy.pause();
      const started = Date.now();
      await expect(broker.publish(topic, Buffer.from('x'), { messageId: 'lost' })).rejects.toBeInstanceOf(BrokerUnavailableError);
      expect(Date.now() - started).toBeLessThan(2000);
      // once the path is really gone the broker reconnects as usual
      await proxy.cut();
      await proxy.restore();
      await waitForPing(broker, 10_000);
      await broker.publish(topic, Buffer.from('y'), { messageId: 'found' });
    } finally {
      await broker.close();
      await proxy.cut();
      await deleteQueues([{ topic, subscription: 'sub' }]);
    }
  });

  it('serves a receive that was already waiting when the connection dropped', { timeout: 30_000 }, async () => {
    const connectionName = `keyway-test-${hex()}`;
    const broker = await createAmqpBroker({ url: AMQP_URL, connectionName });
    const topic = newTopic();
    const publisher = await createAmqpBroker({ url: AMQP_URL });
    try {
      await broker.declareSubscription(topic, 'sub');
      const waiting = broker.receive(topic, 'sub', 15_000);
      await new Promise((r) => setTimeout(r, 100));
      await dropConnection(connectionName);
      await new Promise((r) => setTimeout(r, 500));
      await publisher.publish(topic, Buffer.from('late'), { messageId: 'late-1' });
      const delivery = await waiting;
      expect(delivery?.messageId).toBe('late-1');
      await delivery?.ack();
    } finally {
      await Promise.all([broker.close(), publisher.close()]);
      await deleteQueues([{ topic, subscription: 'sub' }]);
    }
  });

  it('passes a conflicting declaration error through and stays usable', async () => {
    const topic = newTopic();
    const quorum = await createAmqpBroker({ url: AMQP_URL });
    const classic = await createAmqpBroker({ url: AMQP_URL, queueType: 'classic' });
    try {
      await quorum.declareSubscription(topic, 'sub');
      const conflict = classic.declareSubscription(topic, 'sub');
      await expect(conflict).rejects.toMatchObject({ code: 406 });
      await expect(conflict).rejects.not.toBeInstanceOf(BrokerUnavailableError);
      await classic.ping();
      await classic.publish(topic, Buffer.from('ok'), { messageId: 'ok-1' });
      expect((await quorum.receive(topic, 'sub', 3000))?.messageId).toBe('ok-1');
    } finally {
      await Promise.all([quorum.close(), classic.close()]);
      await deleteQueues([{ topic, subscription: 'sub' }]);
    }
  });

  it('keeps a queue declared before queues had bounds (no PRECONDITION_FAILED), reports it once, and bounds new ones', async () => {
    const topic = newTopic();
    const queue = subscriptionQueue(topic, 'legacy');
    // as the version before issue 9 declared them: no x-expires, no x-max-length
    await withChannel(async (ch) => {
      await ch.assertQueue(deadLetterQueue(queue), { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': 'keyway.dlx', 'x-dead-letter-routing-key': queue, 'x-delivery-limit': 9 } });
    });
    const reported: Error[] = [];
    const broker = await createAmqpBroker({ url: AMQP_URL, maxQueueLength: 5, onError: (err) => reported.push(err) });
    try {
      await broker.declareSubscription(topic, 'legacy');
      await broker.declareSubscription(topic, 'legacy');
      expect(reported.filter((err) => err.message.includes(`queue ${queue} exists with other arguments`))).toHaveLength(1);
      await broker.publish(topic, Buffer.from('still works'), { messageId: 'legacy-1' });
      expect((await broker.receive(topic, 'legacy', 3000))?.messageId).toBe('legacy-1');
    } finally {
      await broker.close();
      await deleteQueues([{ topic, subscription: 'legacy' }]);
    }
  });

  it('keeps a quorum queue declared with x-delivery-limit (before issue 12), reports it once, and declares new ones without', async () => {
    const topic = newTopic();
    const queue = subscriptionQueue(topic, 'limited');
    const expires = { 'x-expires': 60_000 };
    // as the version before issue 12 declared them: the bounds as configured, plus a delivery limit
    await withChannel(async (ch) => {
      await ch.assertQueue(deadLetterQueue(queue), { durable: true, arguments: { 'x-queue-type': 'quorum', ...expires } });
      await ch.assertQueue(queue, {
        durable: true,
        arguments: { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': 'keyway.dlx', 'x-dead-letter-routing-key': queue, 'x-delivery-limit': 9, ...expires },
      });
    });
    const reported: Error[] = [];
    const broker = await createAmqpBroker({ url: AMQP_URL, subscriptionExpiresMs: 60_000, onError: (err) => reported.push(err) });
    try {
      await broker.declareSubscription(topic, 'limited');
      await broker.declareSubscription(topic, 'limited');
      const kept = reported.filter((err) => err.message.includes(`queue ${queue} exists with other arguments`));
      expect(kept).toHaveLength(1);
      expect(kept[0]?.message).toContain('x-delivery-limit');
      await broker.publish(topic, Buffer.from('still works'), { messageId: 'limited-1' });
      expect((await broker.receive(topic, 'limited', 3000))?.messageId).toBe('limited-1');
      // a new subscription's queue has no delivery limit: declaring it as the old version did is refused
      await broker.declareSubscription(topic, 'fresh');
      const fresh = subscriptionQueue(topic, 'fresh');
      await expect(
        withChannel((ch) =>
          ch.assertQueue(fresh, {
            durable: true,
            arguments: { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': 'keyway.dlx', 'x-dead-letter-routing-key': fresh, 'x-delivery-limit': 9, ...expires },
          }),
        ),
      ).rejects.toMatchObject({ code: 406, message: expect.stringContaining('x-delivery-limit') });
    } finally {
      await broker.close();
      await deleteQueues([
        { topic, subscription: 'limited' },
        { topic, subscription: 'fresh' },
      ]);
    }
  });

  it("a message over such a queue's x-delivery-limit reads MaxDeliveryCountExceeded as a dead letter", async () => {
    const topic = newTopic();
    const queue = subscriptionQueue(topic, 'limited');
    const args = { 'x-queue-type': 'quorum', 'x-expires': 60_000 };
    await withChannel(async (ch) => {
      await ch.assertQueue(deadLetterQueue(queue), { durable: true, arguments: args });
      await ch.assertQueue(queue, { durable: true, arguments: { ...args, 'x-dead-letter-exchange': 'keyway.dlx', 'x-dead-letter-routing-key': queue, 'x-delivery-limit': 1 } });
    });
    const broker = await createAmqpBroker({ url: AMQP_URL, subscriptionExpiresMs: 60_000 });
    try {
      await broker.declareSubscription(topic, 'limited');
      await broker.publish(topic, Buffer.from('returned'), { messageId: 'returned-1' });
      // RabbitMQ counts these returns (we do not), and dead-letters the message past its limit
      for (let delivery = await broker.receive(topic, 'limited', 1000); delivery; delivery = await broker.receive(topic, 'limited', 500)) await delivery.release();
      const dead = await broker.receiveDeadLetter(topic, 'limited', 3000);
      expect(dead).toMatchObject({ messageId: 'returned-1', deadLetterReason: 'MaxDeliveryCountExceeded', deadLetterDescription: expect.stringContaining('x-delivery-limit') });
    } finally {
      await broker.close();
      await deleteQueues([{ topic, subscription: 'limited' }]);
    }
  });

  // issue 16: the topic's replay stream
  it('declares the topic’s replay stream with its retention; declared with another retention later it is kept as it is, reported once', async () => {
    const topic = newTopic();
    const stream = streamQueue(topic);
    const reported: Error[] = [];
    const broker = await createAmqpBroker({ url: AMQP_URL, onError: (err) => reported.push(err) });
    const retention = { 'x-queue-type': 'stream', 'x-max-age': '3600s', 'x-max-length-bytes': 10_000_000, 'x-stream-max-segment-size-bytes': 2_500_000 };
    try {
      await broker.declareSubscription(topic, 'one', { maxAgeSec: 3600, maxBytes: 10_000_000 });
      // declared as expected: a declaration with these arguments is accepted, one with another age refused
      await withChannel((ch) => ch.assertQueue(stream, { durable: true, arguments: retention }));
      await expect(withChannel((ch) => ch.assertQueue(stream, { durable: true, arguments: { ...retention, 'x-max-age': '60s' } }))).rejects.toMatchObject({
        code: 406,
        message: expect.stringContaining('x-max-age'),
      });
      // a tier's retention changed: the stream keeps its own, the subscriptions are declared all the same
      await broker.declareSubscription(topic, 'two', { maxAgeSec: 60, maxBytes: 10_000_000 });
      await broker.declareSubscription(topic, 'three', { maxAgeSec: 60, maxBytes: 10_000_000 });
      expect(reported.filter((err) => err.message.includes(`queue ${stream} exists with other arguments`))).toHaveLength(1);
      await withChannel((ch) => ch.assertQueue(stream, { durable: true, arguments: retention }));
      await broker.publish(topic, Buffer.from('kept'), { messageId: 'kept-1' });
      for (const name of ['one', 'two', 'three']) expect((await broker.receive(topic, name, 3000))?.messageId).toBe('kept-1');
      expect(await broker.replay(topic, 'three', { offset: 0 })).toEqual({ copied: 1, firstOffset: 0, lastOffset: 0 });
    } finally {
      await broker.close();
      await deleteQueues(['one', 'two', 'three'].map((subscription) => ({ topic, subscription })));
    }
  });

  it('a subscription declared before topics had streams replays nothing until it is declared again', async () => {
    const topic = newTopic();
    const queue = subscriptionQueue(topic, 'legacy');
    await withChannel(async (ch) => {
      await ch.assertQueue(deadLetterQueue(queue), { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': 'keyway.dlx', 'x-dead-letter-routing-key': queue } });
      await ch.bindQueue(queue, 'keyway.topics', `${topic.tenant}.${topic.topic}`);
    });
    const broker = await createAmqpBroker({ url: AMQP_URL });
    try {
      await broker.publish(topic, Buffer.from('before'), { messageId: 'before-1' });
      expect(await broker.replay(topic, 'legacy', { offset: 0 })).toEqual({ copied: 0 });
      await (await broker.receive(topic, 'legacy', 3000))?.ack();
      await broker.declareSubscription(topic, 'legacy');
      await broker.publish(topic, Buffer.from('after'), { messageId: 'after-1' });
      await (await broker.receive(topic, 'legacy', 3000))?.ack();
      expect(await broker.replay(topic, 'legacy', { offset: 0 })).toEqual({ copied: 1, firstOffset: 0, lastOffset: 0 });
      expect((await broker.receive(topic, 'legacy', 3000))?.messageId).toBe('after-1');
    } finally {
      await broker.close();
      await deleteQueues([{ topic, subscription: 'legacy' }]);
    }
  });

  it('replayed copies with ttlMs expire into the dead-letter queue; the stream keeps the batches', { timeout: 30_000 }, async () => {
    const topic = newTopic();
    const broker = await createAmqpBroker({ url: AMQP_URL });
    try {
      await broker.declareSubscription(topic, 'sub');
      for (let i = 0; i < 3; i++) await broker.publish(topic, Buffer.from(`e${i}`), { messageId: `e${i}` });
      for (let i = 0; i < 3; i++) await (await broker.receive(topic, 'sub', 3000))?.ack();
      expect((await broker.replay(topic, 'sub', { offset: 0 }, { ttlMs: 200 })).copied).toBe(3);
      const dlq = deadLetterQueue(subscriptionQueue(topic, 'sub'));
      const deadline = Date.now() + 10_000;
      while ((await withChannel(async (ch) => (await ch.checkQueue(dlq)).messageCount)) < 3) {
        if (Date.now() > deadline) throw new Error('the copies did not expire');
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await broker.receive(topic, 'sub', 200)).toBeNull();
      // without ttlMs a copy stays
      expect((await broker.replay(topic, 'sub', { offset: 0 })).copied).toBe(3);
      await new Promise((r) => setTimeout(r, 500));
      expect((await broker.receive(topic, 'sub', 1000))?.messageId).toBe('e0');
    } finally {
      await broker.close();
      await deleteQueues([{ topic, subscription: 'sub' }]);
    }
  });

  it('a replay by time copies what it should with this host’s clock 10 s ahead of RabbitMQ’s', { timeout: 30_000 }, async () => {
    const topic = newTopic();
    const skew = 10_000;
    const broker = await createAmqpBroker({ url: AMQP_URL, clockOffsetMs: skew, replayIdleMs: 5000 });
    try {
      await broker.declareSubscription(topic, 'sub');
      for (let i = 0; i < 2; i++) await broker.publish(topic, Buffer.from(`k${i}`), { messageId: `k${i}` });
      for (let i = 0; i < 2; i++) await (await broker.receive(topic, 'sub', 3000))?.ack();
      // a second before "now" on this host's clock: RabbitMQ stamped the chunks 10 s earlier by its own
      expect((await broker.replay(topic, 'sub', { time: Date.now() + skew - 3000 })).copied).toBe(2);
      expect((await broker.receive(topic, 'sub', 3000))?.messageId).toBe('k0');
    } finally {
      await broker.close();
      await deleteQueues([{ topic, subscription: 'sub' }]);
    }
  });

  it('a replay that reads nothing from the stream for replayIdleMs rejects rather than wait for ever', { timeout: 30_000 }, async () => {
    const topic = newTopic();
    // this host two minutes ahead: even the margin leaves the read after the replay's end marker
    const skew = 120_000;
    const broker = await createAmqpBroker({ url: AMQP_URL, clockOffsetMs: skew, replayIdleMs: 500 });
    try {
      await broker.declareSubscription(topic, 'sub');
      await broker.publish(topic, Buffer.from('w'), { messageId: 'w' });
      const started = Date.now();
      await expect(broker.replay(topic, 'sub', { time: Date.now() + skew })).rejects.toThrow(/nothing read from the stream/);
      expect(Date.now() - started).toBeLessThan(10_000);
      await expect(broker.replay(topic, 'sub', { time: Date.now() + skew })).rejects.toBeInstanceOf(BrokerUnavailableError);
      // the broker stays usable
      expect((await broker.receive(topic, 'sub', 3000))?.messageId).toBe('w');
    } finally {
      await broker.close();
      await deleteQueues([{ topic, subscription: 'sub' }]);
    }
  });

  it('peek does not show a buffered message whose time to live ended: it is dead-lettered as a receive would', { timeout: 30_000 }, async () => {
    const topic = newTopic();
    const broker = await createAmqpBroker({ url: AMQP_URL });
    try {
      await broker.declareSubscription(topic, 'sub');
      await broker.publish(topic, Buffer.from('short'), { messageId: 'short', ttlMs: 400 });
      expect((await broker.peek(topic, 'sub', 5)).map((m) => m.messageId)).toEqual(['short']);
      await new Promise((r) => setTimeout(r, 600));
      expect(await broker.peek(topic, 'sub', 5)).toEqual([]);
      const dead = await broker.receiveDeadLetter(topic, 'sub', 3000);
      expect(dead?.deadLetterReason).toBe('TTLExpiredException');
      await dead?.ack();
    } finally {
      await broker.close();
      await deleteQueues([{ topic, subscription: 'sub' }]);
    }
  });

  // issue 12: RabbitMQ returns what a consumer prefetched when its instance dies or its connection
  // drops; a quorum queue counted each return, and x-delivery-limit dead-lettered batches nobody saw
  it.each(['quorum', 'classic'] as const)(
    'a %s backlog prefetched by instances that close or lose their connection 12 times is not dead-lettered, nor counted',
    { timeout: 60_000 },
    async (queueType) => {
      const topic = newTopic();
      const backlog = 200;
      const options = { queueType, maxDeliveries: 2, prefetch: 500 };
      const proxy = await amqpProxy();
      const publisher = await createAmqpBroker({ url: AMQP_URL, ...options });
      try {
        await publisher.declareSubscription(topic, 'sub');
        await Promise.all(Array.from({ length: backlog }, (_, i) => publisher.publish(topic, Buffer.from(`m${i}`), { messageId: `m${i}` })));
        for (let round = 0; round < 12; round++) {
          // one receive starts the consumer, which RabbitMQ fills with the whole backlog
          const instance = await createAmqpBroker({ url: AMQP_URL, ...options });
          expect(await instance.receive(topic, 'sub', 3000)).not.toBeNull();
          await instance.close();
        }
        const errors: Error[] = [];
        const dropped = await createAmqpBroker({ url: proxy.url, ...options, onError: (e) => errors.push(e) });
        try {
          for (let round = 0; round < 12; round++) {
            expect(await dropped.receive(topic, 'sub', 3000)).not.toBeNull();
            const lost = errors.length;
            await proxy.cut();
            await until(() => errors.slice(lost).some((e) => e.message.includes('connection to rabbitmq lost')), 5000);
            await proxy.restore();
            await waitForPing(dropped, 10_000);
          }
        } finally {
          await dropped.close();
        }
        const seen = new Map<string, number>();
        for (;;) {
          const delivery = await publisher.receive(topic, 'sub', 1000);
          if (!delivery) break;
          seen.set(delivery.messageId, delivery.deliveryCount);
          await delivery.ack();
        }
        expect(seen.size).toBe(backlog);
        expect([...seen.values()].every((count) => count === 1)).toBe(true);
        expect(await withChannel(async (ch) => (await ch.checkQueue(deadLetterQueue(subscriptionQueue(topic, 'sub')))).messageCount)).toBe(0);
      } finally {
        await publisher.close();
        await proxy.cut();
        await deleteQueues([{ topic, subscription: 'sub' }]);
      }
    },
  );

  it('hands prefetched messages back after the idle timeout so another instance gets them', async () => {
    const topic = newTopic();
    const idle = await createAmqpBroker({ url: AMQP_URL, idleConsumerMs: 300 });
    const other = await createAmqpBroker({ url: AMQP_URL });
    try {
      await idle.declareSubscription(topic, 'sub');
      for (let i = 0; i < 3; i++) await idle.publish(topic, Buffer.from(`m${i}`), { messageId: `m${i}` });
      const first = await idle.receive(topic, 'sub', 3000);
      await first?.ack();
      // m1 and m2 now sit in idle's prefetch buffer; other gets them once idle releases its consumer
      const second = await other.receive(topic, 'sub', 5000);
      expect(second?.messageId).toBe('m1');
      await second?.ack();
    } finally {
      await Promise.all([idle.close(), other.close()]);
      await deleteQueues([{ topic, subscription: 'sub' }]);
    }
  });
});

describe('amqp broker: time to live on RabbitMQ 3.10', () => {
  // issue 16: per-message TTL on quorum queues came with 3.10; what the queues hold, read behind the broker's back
  it.each(['quorum', 'classic'] as const)('a %s queue holds the TTL as `expiration`, dead-letters at its end, and the dead letter keeps our headers without one', async (queueType) => {
    const topic = newTopic();
    const broker = await createAmqpBroker({ url: AMQP_URL, queueType });
    const queue = subscriptionQueue(topic, 'sub');
    try {
      await broker.declareSubscription(topic, 'sub');
      const before = Date.now();
      await broker.publish(topic, Buffer.from('held'), { messageId: 'held', headers: { 'x-source': 'test' }, ttlMs: 60_000 });
      const held = await withChannel(async (ch) => {
        const msg = await ch.get(queue, { noAck: false });
        if (msg) ch.nack(msg, false, true);
        return msg;
      });
      if (!held) throw new Error('nothing in the subscription queue');
      expect(held.properties.expiration).toBe('60000');
      const expiresAt = held.properties.headers?.['x-keyway-expires-at'];
      expect(expiresAt).toBeGreaterThanOrEqual(before + 60_000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);

      await broker.publish(topic, Buffer.from('brief'), { messageId: 'brief', headers: { 'x-source': 'test' }, ttlMs: 300 });
      await new Promise((r) => setTimeout(r, 800));
      // the long one at the head keeps the short one behind it on a quorum queue (expiry at the head only): take it
      await (await broker.receive(topic, 'sub', 3000))?.ack();
      let dead: amqp.GetMessage | false = false;
      for (let tries = 0; !dead && tries < 40; tries++) {
        dead = await withChannel((ch) => ch.get(deadLetterQueue(queue), { noAck: true }));
        if (!dead) await new Promise((r) => setTimeout(r, 50));
      }
      if (!dead) throw new Error('no dead letter');
      expect(dead.properties.messageId).toBe('brief');
      expect(dead.properties.expiration).toBeUndefined();
      expect(dead.properties.headers).toMatchObject({ 'x-source': 'test', 'x-keyway-expires-at': expect.any(Number), 'x-death': [expect.objectContaining({ reason: 'expired' })] });
    } finally {
      await broker.close();
      await deleteQueues([{ topic, subscription: 'sub' }]);
    }
  });
});

describe('amqp broker: time to live on RabbitMQ 3.10 (requeue)', () => {
  it('an abandon requeues a batch with what is left of its time to live', async () => {
    const topic = newTopic();
    // a short idle timeout hands what this instance prefetched back to the queue, where the test reads it
    const broker = await createAmqpBroker({ url: AMQP_URL, idleConsumerMs: 200 });
    const queue = subscriptionQueue(topic, 'sub');
    try {
      await broker.declareSubscription(topic, 'sub');
      await broker.publish(topic, Buffer.from('abandoned'), { messageId: 'abandoned', ttlMs: 60_000 });
      const delivery = await broker.receive(topic, 'sub', 3000);
      await new Promise((r) => setTimeout(r, 500));
      await delivery?.nack(true);
      await new Promise((r) => setTimeout(r, 800));
      const copy = await withChannel((ch) => ch.get(queue, { noAck: true }));
      if (!copy) throw new Error('nothing in the subscription queue');
      expect(copy.properties.headers?.['x-keyway-delivery-count']).toBe(2);
      expect(Number(copy.properties.expiration)).toBeLessThanOrEqual(59_500);
      expect(Number(copy.properties.expiration)).toBeGreaterThan(55_000);
    } finally {
      await broker.close();
      await deleteQueues([{ topic, subscription: 'sub' }]);
    }
  });
});

describe('memory broker replay stream', () => {
  it('drops batches older than the retention age, as RabbitMQ’s x-max-age does segment by segment', async () => {
    const broker = createMemoryBroker();
    const topic = newTopic();
    try {
      await broker.declareSubscription(topic, 'sub', { maxAgeSec: 1, maxBytes: 1_000_000 });
      await broker.publish(topic, Buffer.from('old'), { messageId: 'old-1' });
      await new Promise((r) => setTimeout(r, 1200));
      await broker.publish(topic, Buffer.from('new'), { messageId: 'new-1' });
      // declared again with another retention: the stream keeps its own
      await broker.declareSubscription(topic, 'sub', { maxAgeSec: 3600, maxBytes: 1_000_000 });
      for (let delivery = await broker.receive(topic, 'sub', 0); delivery; delivery = await broker.receive(topic, 'sub', 0)) await delivery.ack();
      expect(await broker.replay(topic, 'sub', { offset: 0 })).toEqual({ copied: 1, firstOffset: 1, lastOffset: 1 });
      expect((await broker.receive(topic, 'sub', 0))?.messageId).toBe('new-1');
    } finally {
      await broker.close();
    }
  });
});

describe('createBroker', () => {
  it('uses memory without an AMQP URL and RabbitMQ with one', async () => {
    const memory: Broker = await createBroker({});
    const topic = newTopic();
    await memory.declareSubscription(topic, 'sub');
    await memory.publish(topic, Buffer.from('m'), { messageId: 'm' });
    expect(await memory.depth(topic, 'sub')).toBe(1);
    await memory.close();

    const rabbit = await createBroker({ amqpUrl: AMQP_URL });
    await rabbit.ping();
    await rabbit.close();
  });
});
