import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '@keyway/clients';
import { deadLetterQueue, NoSubscriptionError, subscriptionQueue, type TopicRef } from '@keyway/broker';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

/**
 * Issue 9 (high): any listen key created unlimited subscriptions, two durable queues each, forever.
 * Only the operator's inventory (and `default`) can be received from, a feed lists a bounded number,
 * every queue expires when abandoned, and dropping a subscription deletes its queues.
 */
const MAX_SUBSCRIPTIONS_PER_FEED = 20;
let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
});
afterAll(() => suite?.close());

/** RabbitMQ's own queues, with their arguments (amqplib cannot list queues) */
async function rabbitQueues(): Promise<Map<string, Record<string, unknown>>> {
  const { stdout } = await promisify(execFile)('rabbitmqctl', ['list_queues', '-q', '--formatter', 'json', 'name', 'arguments'], { timeout: 30_000 });
  const listed = JSON.parse(stdout) as { name: string; arguments: [string, string, unknown][] }[];
  return new Map(listed.map((q) => [q.name, Object.fromEntries(q.arguments.map(([name, , value]) => [name, value]))]));
}

/** whether RabbitMQ has the subscription's queue, and its dead-letter queue (amqplib checkQueue, on the suite's own connection) */
async function queuesExist(topic: TopicRef, subscription: string): Promise<[boolean, boolean]> {
  const queue = subscriptionQueue(topic, subscription);
  const names = await rabbitQueues();
  const viaAmqp = await suite.broker.depth(topic, subscription).then(
    () => true,
    (err: unknown) => (err instanceof NoSubscriptionError ? false : Promise.reject(err)),
  );
  expect(viaAmqp).toBe(names.has(queue));
  return [names.has(queue), names.has(deadLetterQueue(queue))];
}

async function listenKey() {
  const t = await provisionTenant(suite);
  const tokens = await suite.pas.password(t.email, PASSWORD);
  const sas = await suite.pac.sas({ refresh_token: tokens.refresh_token, rights: 'listen-send' });
  return { ...t, key: sas.sas_key, ref: { tenant: t.tenant, topic: t.feed } as TopicRef };
}

const receive = (t: { tenant: string; feed: string; key: string }, subscription: string, path = 'messages/head?timeout=0') =>
  rawClient(suite, 'topic').post(`/tenants/${t.tenant}/topics/${t.feed}/subscriptions/${subscription}/${path}`, undefined, { headers: { authorization: t.key } });

describe('issue 9: subscriptions come from the operator’s inventory', { timeout: 60_000 }, () => {
  it('a made-up subscription name answers 404 subscription_not_found and no queue is declared for it', async () => {
    const t = await listenKey();
    for (const path of ['messages/head?timeout=0', '$deadletterqueue/messages/head?timeout=0', 'messages/stream?timeout=1']) {
      const response = await receive(t, 'made-up', path);
      expect({ path, status: response.status, body: response.data }).toEqual({
        path,
        status: 404,
        body: { error: 'subscription_not_found', error_description: expect.any(String) },
      });
    }
    expect(await queuesExist(t.ref, 'made-up')).toEqual([false, false]);
    // `default` exists without being listed
    expect((await receive(t, 'default')).status).toBe(204);
  });

  it('a listed subscription is received from; dropping it deletes its queues, and it answers 404 again', async () => {
    const t = await listenKey();
    await suite.operator.createSubscription(t.tenant, t.feed, 'siem');
    expect((await receive(t, 'siem')).status).toBe(204);
    expect(await queuesExist(t.ref, 'siem')).toEqual([true, true]);
    const published = await rawClient(suite, 'topic').post(`/tenants/${t.tenant}/topics/${t.feed}/messages`, makeBatch(t.tenant, t.feed, 1), {
      headers: { authorization: t.key },
    });
    expect(published.status).toBe(201);
    expect((await receive(t, 'siem', 'messages/head?timeout=5')).status).toBe(201);

    await suite.operator.deleteSubscription(t.tenant, t.feed, 'siem');
    expect(await queuesExist(t.ref, 'siem')).toEqual([false, false]);
    // the topic service asks the inventory afresh once the queue is gone: not declared again
    expect((await receive(t, 'siem')).status).toBe(404);
    expect(await queuesExist(t.ref, 'siem')).toEqual([false, false]);
  });

  it('a feed lists at most MAX_SUBSCRIPTIONS_PER_FEED subscriptions: 409 subscription_limit_reached beyond', async () => {
    const t = await listenKey();
    for (let i = 0; i < MAX_SUBSCRIPTIONS_PER_FEED; i++) await suite.operator.createSubscription(t.tenant, t.feed, `s-${i}`);
    // listing one again is not a new one
    expect((await suite.operator.createSubscription(t.tenant, t.feed, 's-0')).created).toBe(false);
    const over = await suite.operator.createSubscription(t.tenant, t.feed, 'one-too-many').catch((err: unknown) => err);
    expect(over).toBeInstanceOf(ApiError);
    expect(over).toMatchObject({ status: 409, code: 'subscription_limit_reached' });
    // `default` is never listed
    expect(await suite.operator.createSubscription(t.tenant, t.feed, 'default').catch((err: unknown) => err)).toMatchObject({ status: 400, code: 'invalid_request' });
  });

  it('every subscription queue and its dead-letter queue carry an expiry (x-expires) and a length bound', async () => {
    const t = await listenKey();
    await suite.operator.createSubscription(t.tenant, t.feed, 'bounded');
    expect((await receive(t, 'bounded')).status).toBe(204);
    const queue = subscriptionQueue(t.ref, 'bounded');
    const listed = await rabbitQueues();
    for (const name of [queue, deadLetterQueue(queue)]) {
      const args = listed.get(name);
      expect({ name, args }).toMatchObject({ name, args: { 'x-expires': 7 * 24 * 3600 * 1000, 'x-max-length': 100_000, 'x-overflow': 'drop-head' } });
    }
  });

  it('the internal inventory API answers the topic service’s certificate only', async () => {
    const t = await listenKey();
    const path = `/internal/v1/tenants/${t.tenant}/feeds/${t.feed}/subscriptions`;
    for (const caller of ['pac', 'pas', 'operator']) expect((await rawClient(suite, 'entitlement', caller).get(path)).status).toBe(403);
    expect((await rawClient(suite, 'entitlement').get(path)).status).toBe(401);
    expect((await rawClient(suite, 'entitlement', 'topic').get(path)).data).toEqual({ subscriptions: [] });
  });
});
