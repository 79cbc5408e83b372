import { describe, expect, it, vi } from 'vitest';
import { OAuthError, silentLogger } from '@keyway/kit';
import { createMemoryBroker } from '@keyway/broker';
import { createMemoryStore } from '@keyway/store';
import { subscriptionInventory } from './inventory.ts';
import { tierFeedPolicies } from './policy.ts';
import { subscriptionRegistry } from './subscriptions.ts';

const topic = { tenant: 'acme', topic: 'edr' };
const policy = { retentionSec: 86_400, retentionBytes: 1_000_000, messageTtlSec: 0, duplicateWindowSec: 0 };

async function refusal(promise: Promise<unknown>): Promise<{ status: number; code: string } | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    return { status: err.status, code: err.code };
  }
}

function setup(source: (tenant: string, topic: string) => Promise<string[]>) {
  let now = 0;
  const lookups = vi.fn(async (tenant: string, topic: string) => ({ subscriptions: await source(tenant, topic) }));
  const broker = createMemoryBroker();
  const declare = vi.spyOn(broker, 'declareSubscription');
  const inventory = subscriptionInventory(lookups, { ttlMs: 5000, now: () => now });
  const registry = subscriptionRegistry(broker, createMemoryStore({ prefix: 'inventory-test:' }), silentLogger, inventory, tierFeedPolicies(inventory, policy), () => now);
  return { lookups, broker, declare, registry, advance: (ms: number) => (now += ms) };
}

describe('issue 9: subscriptions are declared only when the inventory lists them', () => {
  it('an unlisted name is 404 subscription_not_found and nothing is declared; made-up names cost one lookup per feed per TTL', async () => {
    const t = setup(async () => ['siem']);
    for (let i = 0; i < 50; i++) expect(await refusal(t.registry.ensure(topic, `made-up-${i}`))).toEqual({ status: 404, code: 'subscription_not_found' });
    expect(t.declare).not.toHaveBeenCalled();
    expect(t.lookups).toHaveBeenCalledTimes(1);
    await t.registry.ensure(topic, 'siem');
    expect(t.declare).toHaveBeenCalledTimes(1);
    // issue 16: with the replay stream the feed's policy keeps
    expect(t.declare).toHaveBeenCalledWith(topic, 'siem', { maxAgeSec: 86_400, maxBytes: 1_000_000 });
    t.advance(5000);
    await refusal(t.registry.ensure(topic, 'made-up'));
    expect(t.lookups).toHaveBeenCalledTimes(2);
  });

  it('`default` need not be listed; the one lookup gives the feed policy its replay stream is declared with', async () => {
    const t = setup(async () => []);
    await t.registry.ensure(topic, 'default');
    expect(t.lookups).toHaveBeenCalledTimes(1);
    expect(t.declare).toHaveBeenCalledTimes(1);
    expect(t.declare).toHaveBeenCalledWith(topic, 'default', { maxAgeSec: policy.retentionSec, maxBytes: policy.retentionBytes });
  });

  it('an inventory that cannot answer is 503 (fail closed), not cached', async () => {
    let up = false;
    const t = setup(async () => {
      if (!up) throw new Error('ECONNREFUSED');
      return ['siem'];
    });
    expect(await refusal(t.registry.ensure(topic, 'siem'))).toEqual({ status: 503, code: 'temporarily_unavailable' });
    expect(t.declare).not.toHaveBeenCalled();
    up = true;
    await t.registry.ensure(topic, 'siem');
    expect(t.declare).toHaveBeenCalledTimes(1);
  });

  it('a subscription whose queue is gone is declared again only if the inventory, asked afresh, still lists it', async () => {
    let names = ['siem'];
    const t = setup(async () => names);
    await t.registry.withSubscription(topic, 'siem', () => t.broker.depth(topic, 'siem'));
    // dropped from the inventory (within the cache TTL here) and its queues deleted
    names = [];
    await t.broker.deleteSubscription(topic, 'siem');
    expect(await refusal(t.registry.withSubscription(topic, 'siem', () => t.broker.depth(topic, 'siem')))).toEqual({ status: 404, code: 'subscription_not_found' });
    expect(t.declare).toHaveBeenCalledTimes(1);
  });

  it('a subscription received from is declared again every REDECLARE_MS (restarting its queues’ expiry); publishing does not renew', async () => {
    const t = setup(async () => ['siem']);
    await t.registry.ensure(topic, 'siem');
    await t.registry.ensure(topic, 'default', { renew: false });
    t.advance(3600_000);
    await t.registry.ensure(topic, 'default', { renew: false });
    expect(t.declare).toHaveBeenCalledTimes(2);
    await t.registry.ensure(topic, 'siem');
    expect(t.declare).toHaveBeenCalledTimes(3);
  });
});
