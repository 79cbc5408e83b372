import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { hex, newTopic } from './broker.contract.ts';
import type { BrokerHarness } from './broker.contract.ts';
import { NoSubscriptionError } from './broker.ts';
import type { Broker, Delivery, TopicRef } from './broker.ts';

/** Message expiry, dead-letter reasons, deadLetter() and resubmission (issue 16), the same on every Broker. */
export function deadLetterContract(name: string, harness: BrokerHarness): void {
  describe(`Broker dead letters: ${name}`, () => {
    let brokers: Broker[] = [];
    let declared: { topic: TopicRef; subscription: string }[] = [];

    type Options = { maxDeliveries?: number; maxQueueLength?: number };
    const open = async (options?: Options): Promise<Broker> => {
      const broker = await harness.create(options);
      brokers.push(broker);
      return broker;
    };
    /** a broker with a fresh subscription 'sub' of a fresh topic */
    const subscribed = async (options?: Options): Promise<{ broker: Broker; topic: TopicRef }> => {
      const broker = await open(options);
      const topic = newTopic();
      await broker.declareSubscription(topic, 'sub');
      declared.push({ topic, subscription: 'sub' });
      return { broker, topic };
    };
    const publish = (broker: Broker, topic: TopicRef, messageId: string, ttlMs?: number) =>
      broker.publish(topic, Buffer.from(`body of ${messageId}`), { messageId, contentType: 'text/plain', headers: { 'x-source': 'test' }, ...(ttlMs !== undefined && { ttlMs }) });
    const mustReceive = async (broker: Broker, topic: TopicRef): Promise<Delivery> => {
      const delivery = await broker.receive(topic, 'sub', 3000);
      if (!delivery) throw new Error('nothing received from the subscription within 3 s');
      return delivery;
    };
    const mustReceiveDeadLetter = async (broker: Broker, topic: TopicRef): Promise<Delivery> => {
      const delivery = await broker.receiveDeadLetter(topic, 'sub', 3000);
      if (!delivery) throw new Error('nothing received from the dead-letter queue within 3 s');
      return delivery;
    };
    /** every dead letter, acked, as what a receiver of the dead-letter queue sees */
    const drainDeadLetters = async (broker: Broker, topic: TopicRef) => {
      const seen = [];
      for (let dead = await broker.receiveDeadLetter(topic, 'sub', 1000); dead; dead = await broker.receiveDeadLetter(topic, 'sub', 500)) {
        seen.push({ messageId: dead.messageId, reason: dead.deadLetterReason, description: dead.deadLetterDescription });
        await dead.ack();
      }
      return seen;
    };

    afterEach(async () => {
      await Promise.all(brokers.map((b) => b.close()));
      await harness.cleanup(declared);
      brokers = [];
      declared = [];
    });

    it('a batch not received within its time to live is no longer delivered; its dead letter reads TTLExpiredException', async () => {
      const { broker, topic } = await subscribed();
      const published = Date.now();
      await publish(broker, topic, 'brief', 1000);
      await publish(broker, topic, 'forever');
      await sleep(1500);
      // dead-lettered by the broker itself, before anyone asked for the subscription's messages
      const dead = await mustReceiveDeadLetter(broker, topic);
      expect(dead).toMatchObject({ messageId: 'brief', deadLetterReason: 'TTLExpiredException', deliveryCount: 1 });
      expect(dead.body.toString()).toBe('body of brief');
      // callers see the publisher's headers only
      expect(dead.headers).toEqual({ 'x-source': 'test' });
      const endedAt = Date.parse(/ended at (\S+)$/.exec(dead.deadLetterDescription ?? '')?.[1] ?? '');
      expect(endedAt).toBeGreaterThanOrEqual(published + 1000);
      expect(endedAt).toBeLessThan(published + 1500);
      await dead.ack();
      const kept = await mustReceive(broker, topic);
      expect(kept.messageId).toBe('forever');
      expect(kept.deadLetterReason).toBeUndefined();
      await kept.ack();
      expect(await broker.receive(topic, 'sub', 200)).toBeNull();
    });

    it('a batch whose time to live ends while the receiving instance holds it ready is dead-lettered, not handed out', async () => {
      const { broker, topic } = await subscribed();
      // a first receive starts whatever the broker keeps ready for this subscription (RabbitMQ: a prefetching consumer)
      await publish(broker, topic, 'first');
      await (await mustReceive(broker, topic)).ack();
      await publish(broker, topic, 'brief', 1000);
      await publish(broker, topic, 'forever');
      await sleep(1500);
      const next = await mustReceive(broker, topic);
      expect(next.messageId).toBe('forever');
      await next.ack();
      expect(await drainDeadLetters(broker, topic)).toEqual([{ messageId: 'brief', reason: 'TTLExpiredException', description: expect.stringMatching(/^its time to live ended at /) }]);
    });

    it('an abandoned batch keeps its time to live: abandon does not restart it', async () => {
      const { broker, topic } = await subscribed();
      await publish(broker, topic, 'brief', 2000);
      const first = await mustReceive(broker, topic);
      await sleep(1000);
      await first.nack(true);
      // 1 s left: redelivered now, counted
      const second = await mustReceive(broker, topic);
      expect(second).toMatchObject({ messageId: 'brief', deliveryCount: 2 });
      await second.nack(true);
      await sleep(1400);
      // a restarted time to live would have 600 ms to go
      expect(await broker.receive(topic, 'sub', 300)).toBeNull();
      expect(await drainDeadLetters(broker, topic)).toEqual([{ messageId: 'brief', reason: 'TTLExpiredException', description: expect.any(String) }]);
    });

    it('abandoned at maxDeliveries: MaxDeliveryCountExceeded, "delivered N times"; nack(false): Rejected', async () => {
      const { broker, topic } = await subscribed({ maxDeliveries: 3 });
      await publish(broker, topic, 'poison');
      for (let i = 0; i < 3; i++) await (await mustReceive(broker, topic)).nack(true);
      await publish(broker, topic, 'refused');
      await (await mustReceive(broker, topic)).nack(false);
      expect(await broker.receive(topic, 'sub', 200)).toBeNull();
      expect(await drainDeadLetters(broker, topic)).toEqual([
        { messageId: 'poison', reason: 'MaxDeliveryCountExceeded', description: 'delivered 3 times' },
        { messageId: 'refused', reason: 'Rejected', description: 'rejected by its receiver' },
      ]);
    });

    it('pushed out of a full subscription queue: MaxQueueLengthExceeded', async () => {
      const { broker, topic } = await subscribed({ maxQueueLength: 2 });
      for (const id of ['m1', 'm2', 'm3']) await publish(broker, topic, id);
      expect(await drainDeadLetters(broker, topic)).toEqual([{ messageId: 'm1', reason: 'MaxQueueLengthExceeded', description: expect.any(String) }]);
    });

    it('deadLetter(reason, description) moves the batch to the dead letters with both; the reason stays through abandons there', async () => {
      const { broker, topic } = await subscribed();
      await publish(broker, topic, 'malformed');
      const delivery = await mustReceive(broker, topic);
      await expect(delivery.deadLetter('', 'no reason')).rejects.toBeInstanceOf(TypeError);
      await delivery.deadLetter('Malformed', 'x');
      await delivery.deadLetter('Malformed', 'again'); // settling twice is a no-op
      expect(await broker.receive(topic, 'sub', 300)).toBeNull();
      const dead = await mustReceiveDeadLetter(broker, topic);
      expect(dead).toMatchObject({ messageId: 'malformed', deadLetterReason: 'Malformed', deadLetterDescription: 'x', deliveryCount: 1, headers: { 'x-source': 'test' } });
      expect(dead.body.toString()).toBe('body of malformed');
      // a dead letter cannot be dead-lettered again, and stays unsettled
      await expect(dead.deadLetter('Again', 'y')).rejects.toBeInstanceOf(TypeError);
      await dead.nack(true);
      const again = await mustReceiveDeadLetter(broker, topic);
      expect(again).toMatchObject({ messageId: 'malformed', deadLetterReason: 'Malformed', deadLetterDescription: 'x', deliveryCount: 2 });
      await again.ack();
    });

    it('resubmitDeadLetters moves dead letters back, oldest first, up to max: counted from 1, without reason', async () => {
      const { broker, topic } = await subscribed({ maxDeliveries: 2 });
      for (const id of ['d1', 'd2', 'd3']) await publish(broker, topic, id);
      await (await mustReceive(broker, topic)).deadLetter('Malformed', 'x');
      await (await mustReceive(broker, topic)).nack(false);
      for (let i = 0; i < 2; i++) await (await mustReceive(broker, topic)).nack(true);
      await publish(broker, topic, 'live');

      expect(await broker.resubmitDeadLetters(topic, 'sub', { max: 2 })).toBe(2);
      const received: Delivery[] = [];
      for (let i = 0; i < 3; i++) received.push(await mustReceive(broker, topic));
      expect(received.map((d) => [d.messageId, d.deliveryCount, d.deadLetterReason])).toEqual([
        ['live', 1, undefined],
        ['d1', 1, undefined],
        ['d2', 1, undefined],
      ]);
      expect(received[1]?.headers).toEqual({ 'x-source': 'test' });
      expect(received[1]?.body.toString()).toBe('body of d1');
      for (const d of received) await d.ack();
      // the third is still a dead letter; it moves with the next call, and then there are none
      expect(await broker.resubmitDeadLetters(topic, 'sub', { max: 100 })).toBe(1);
      expect(await broker.resubmitDeadLetters(topic, 'sub', { max: 100 })).toBe(0);
      const third = await mustReceive(broker, topic);
      expect(third).toMatchObject({ messageId: 'd3', deliveryCount: 1 });
      // and is counted afresh: maxDeliveries more deliveries before it is a dead letter again
      await third.nack(true);
      expect(await mustReceive(broker, topic)).toMatchObject({ messageId: 'd3', deliveryCount: 2 });
    });

    it('resubmitDeadLetters leaves a dead letter locked by a receiver where it is', async () => {
      const { broker, topic } = await subscribed();
      for (const id of ['d1', 'd2', 'd3']) {
        await publish(broker, topic, id);
        await (await mustReceive(broker, topic)).nack(false);
      }
      const locked = await mustReceiveDeadLetter(broker, topic);
      expect(locked.messageId).toBe('d1');
      expect(await broker.resubmitDeadLetters(topic, 'sub', { max: 10 })).toBe(2);
      const back = [await mustReceive(broker, topic), await mustReceive(broker, topic)];
      expect(back.map((d) => d.messageId)).toEqual(['d2', 'd3']);
      for (const d of back) await d.ack();
      // the locked one is still the receiver's to settle
      await locked.nack(true);
      expect(await mustReceiveDeadLetter(broker, topic)).toMatchObject({ messageId: 'd1', deadLetterReason: 'Rejected' });
    });

    it('a resubmitted batch keeps a time to live still running; one that ended is not restarted', async () => {
      const { broker, topic } = await subscribed();
      await publish(broker, topic, 'expired', 300);
      await publish(broker, topic, 'running', 2500);
      await sleep(600);
      await (await mustReceive(broker, topic)).deadLetter('Malformed', 'x');
      expect(await broker.resubmitDeadLetters(topic, 'sub', { max: 10 })).toBe(2);
      await sleep(2600);
      // 'running' ended 2.5 s after its publish; 'expired' has none any more
      const kept = await mustReceive(broker, topic);
      expect(kept).toMatchObject({ messageId: 'expired', deliveryCount: 1 });
      await kept.ack();
      expect(await broker.receive(topic, 'sub', 200)).toBeNull();
      expect(await drainDeadLetters(broker, topic)).toEqual([{ messageId: 'running', reason: 'TTLExpiredException', description: expect.any(String) }]);
    });

    it('resubmitDeadLetters of a subscription that does not exist rejects with NoSubscriptionError', async () => {
      const broker = await open();
      await expect(broker.resubmitDeadLetters(newTopic(), `nope-${hex()}`, { max: 1 })).rejects.toBeInstanceOf(NoSubscriptionError);
      await expect(broker.resubmitDeadLetters(newTopic(), 'sub', { max: -1 })).rejects.toBeInstanceOf(RangeError);
    });
  });
}
