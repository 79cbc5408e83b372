import { describe, expect, it } from 'vitest';
import { consumeEvents, type EventSchema } from './consumer.ts';
import { createMemoryBroker } from './memory.ts';

interface Removal {
  type: 'user.removed';
  sub: string;
}

/** What a zod schema does, without the dependency: the event, or a throw. */
const Removal: EventSchema<Removal> = {
  parse(value) {
    const v = value as Partial<Removal> | null;
    if (v?.type !== 'user.removed' || typeof v.sub !== 'string') throw new Error('not a removal');
    return { type: v.type, sub: v.sub };
  },
};

const topic = { tenant: 'vendor', topic: 'changes' };

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('consumeEvents', () => {
  it('hands each checked event to the handler and acks it; a body that does not check is returned for another try', async () => {
    const broker = createMemoryBroker({ maxDeliveries: 2 });
    await broker.declareSubscription(topic, 'follower');
    const handled: Removal[] = [];
    const errors: unknown[] = [];
    const follower = consumeEvents(broker, topic, 'follower', Removal, async (event) => void handled.push(event), { waitMs: 50, onError: (err) => errors.push(err) });
    try {
      await broker.publish(topic, Buffer.from('{"type":"user.removed","sub":"u-1"}'), { messageId: 'm1' });
      await broker.publish(topic, Buffer.from('not json'), { messageId: 'm2' });
      await broker.publish(topic, Buffer.from('{"type":"feed.removed"}'), { messageId: 'm3' });
      // maxDeliveries 2: each bad body is tried twice, then dead-lettered
      await until(() => broker.deadLetters(topic, 'follower').length === 2);
      expect(handled).toEqual([{ type: 'user.removed', sub: 'u-1' }]);
      expect(errors).toHaveLength(4);
      expect(errors.filter((e) => e instanceof SyntaxError)).toHaveLength(2);
      expect(errors.filter((e) => e instanceof Error && e.message === 'not a removal')).toHaveLength(2);
      expect(await broker.depth(topic, 'follower')).toBe(0);
    } finally {
      await follower.stop();
      await broker.close();
    }
  });

  it('issue 11: a handler that keeps failing (our store down) is retried in place until it applies, never dead-lettered', async () => {
    const broker = createMemoryBroker({ maxDeliveries: 2 });
    await broker.declareSubscription(topic, 'follower');
    let failures = 0;
    const applied: Array<{ sub: string; deliveryCount: number }> = [];
    const follower = consumeEvents(
      broker,
      topic,
      'follower',
      Removal,
      async (event, delivery) => {
        // far more failures than the delivery limit allows deliveries
        if (failures < 6) {
          failures += 1;
          throw Object.assign(new Error('store unreachable'), { code: 'ERR_STORE_UNAVAILABLE' });
        }
        applied.push({ sub: event.sub, deliveryCount: delivery.deliveryCount });
      },
      { waitMs: 50 },
    );
    try {
      await broker.publish(topic, Buffer.from('{"type":"user.removed","sub":"u-1"}'), { messageId: 'm1' });
      await until(() => applied.length === 1, 10_000);
      expect(applied).toEqual([{ sub: 'u-1', deliveryCount: 1 }]);
      expect(broker.deadLetters(topic, 'follower')).toEqual([]);
      expect(await broker.depth(topic, 'follower')).toBe(0);
    } finally {
      await follower.stop();
      await broker.close();
    }
  });

  it('a handler that fails for another reason (a bug) is not retried for ever: the event goes back and is dead-lettered, and the next one applies', async () => {
    const broker = createMemoryBroker({ maxDeliveries: 2 });
    await broker.declareSubscription(topic, 'follower');
    const applied: string[] = [];
    const follower = consumeEvents(
      broker,
      topic,
      'follower',
      Removal,
      async (event) => {
        if (event.sub === 'poison') throw new Error('a bug, not an outage');
        applied.push(event.sub);
      },
      { waitMs: 50 },
    );
    try {
      await broker.publish(topic, Buffer.from('{"type":"user.removed","sub":"poison"}'), { messageId: 'm1' });
      await broker.publish(topic, Buffer.from('{"type":"user.removed","sub":"u-2"}'), { messageId: 'm2' });
      await until(() => applied.length === 1 && broker.deadLetters(topic, 'follower').length === 1, 20_000);
      expect(applied).toEqual(['u-2']);
      expect(broker.deadLetters(topic, 'follower')).toHaveLength(1);
    } finally {
      await follower.stop();
    }
  }, 30_000);
});
