import { describe, expect, it } from 'vitest';
import type { Broker } from './broker.ts';
import { createMemoryBroker } from './memory.ts';
import { outbox, timeSortableId, type OutboxStore } from './outbox.ts';

const topic = { tenant: 'vendor', topic: 'revocations' };

/** The store calls an outbox makes, on a Map (the Redis and memory stores are covered by store.contract.ts). */
function mapStore(): OutboxStore & { size(): number } {
  const values = new Map<string, string>();
  const sets = new Map<string, Set<string>>();
  const setOf = (key: string) => sets.get(key) ?? sets.set(key, new Set()).get(key)!;
  return {
    get: async (key) => values.get(key) ?? null,
    set: async (key, value) => {
      values.set(key, value);
      return true;
    },
    del: async (...keys) => keys.filter((k) => values.delete(k)).length,
    sadd: async (key, ...members) => members.filter((m) => !setOf(key).has(m) && setOf(key).add(m)).length,
    srem: async (key, ...members) => members.filter((m) => setOf(key).delete(m)).length,
    smembers: async (key) => [...setOf(key)],
    size: () => values.size,
  };
}

describe('outbox', () => {
  it('keeps an event the broker refused and publishes it, in order, once the broker is back', async () => {
    const memory = createMemoryBroker({});
    let down = true;
    const broker = new Proxy(memory, {
      get(target, name, receiver) {
        if (name === 'publish' && down) return () => Promise.reject(new Error('broker down'));
        return Reflect.get(target, name, receiver) as unknown;
      },
    }) as Broker;
    const store = mapStore();
    const warnings: string[] = [];
    const relay = outbox(store, broker, topic, { subscribers: ['pac'], retryMs: 20, logger: { warn: (m) => void warnings.push(m) } });
    try {
      const first = { id: timeSortableId(1), n: 1 };
      const second = { id: timeSortableId(2), n: 2 };
      await relay.add(second);
      await relay.add(first);
      expect(store.size()).toBe(2);
      expect(warnings.length).toBeGreaterThan(0);
      // the consumer's subscription was declared before anything was published: nothing is missed
      down = false;
      await relay.flush();
      const bodies: unknown[] = [];
      for (let d = await memory.receive(topic, 'pac', 100); d; d = await memory.receive(topic, 'pac', 100)) {
        bodies.push(JSON.parse(d.body.toString('utf8')));
        await d.ack();
      }
      expect(bodies).toEqual([first, second]);
      expect(store.size()).toBe(0);
    } finally {
      relay.close();
      await memory.close();
    }
  });
});
