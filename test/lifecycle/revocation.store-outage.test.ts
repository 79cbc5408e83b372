import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { tcpProxy, viaProxy, type TcpProxy } from '@keyway/testkit/tcp-proxy';
import { makeBatch, PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

/**
 * Longer than the old retry budget: a failed handling went back to the queue, ten deliveries
 * (MAX_DELIVERIES) with backoff 0.1 s doubling to 5 s dead-lettered it after about 26 s.
 */
const OUTAGE_MS = 35_000;

/**
 * Issue 11: an access-removing change event whose handling fails because the service's own store is
 * down is retried until it applies, never dead-lettered. PAS's and PAC's Redis links are cut (a TCP
 * proxy each) while a user is removed, held cut past the old budget, then restored: both services
 * apply the event itself (the trail names user.removed as the reason) and neither dead-letters it.
 */
describe('issue 11: a removal survives PAS’s and PAC’s store being down', () => {
  let suite: Suite;
  const proxies = {} as Record<'pas' | 'pac', TcpProxy>;
  beforeAll(async () => {
    const redis = new URL(REDIS_URL);
    proxies.pas = await tcpProxy(redis.hostname, Number(redis.port || 6379));
    proxies.pac = await tcpProxy(redis.hostname, Number(redis.port || 6379));
    suite = await startSuite({
      redisUrl: REDIS_URL,
      amqpUrl: AMQP_URL,
      links: { pas: { redisUrl: viaProxy(REDIS_URL, proxies.pas) }, pac: { redisUrl: viaProxy(REDIS_URL, proxies.pac) } },
    });
  });
  afterAll(async () => {
    await suite?.close();
    for (const proxy of Object.values(proxies)) await proxy.cut().catch(() => undefined);
  });

  it(`user.removed applies once the stores are back after ${OUTAGE_MS / 1000} s, and is never dead-lettered`, async () => {
    const t = await provisionTenant(suite);
    const tokens = await suite.pas.password(t.email, PASSWORD);
    const sas = await suite.pac.sas({ refresh_token: tokens.refresh_token, rights: 'send' });
    await suite.topic.publish(sas.sas_key, makeBatch(t.tenant, t.feed, 1));

    const cutAt = Date.now();
    await Promise.all([proxies.pas.cut(), proxies.pac.cut()]);
    try {
      await suite.operator.deleteUser(t.tenant, t.user.id);
      await sleep(OUTAGE_MS);
    } finally {
      await Promise.all([proxies.pas.restore(), proxies.pac.restore()]);
    }
    const restoredAt = Date.now();

    // Nothing uses the key or the token meanwhile: the revocations below are the event's own.
    const revokedBy = async (action: string) => (await suite.auditor.events({ tenant: t.tenant, action })).events.filter((e) => e.reason === 'user.removed');
    let keys = await revokedBy('sas_key.revoked');
    let families = await revokedBy('refresh_family.revoked');
    while ((keys.length === 0 || families.length === 0) && Date.now() - restoredAt < 20_000) {
      await sleep(200);
      [keys, families] = await Promise.all([revokedBy('sas_key.revoked'), revokedBy('refresh_family.revoked')]);
    }
    const deadLettered = { pas: await suite.broker.receiveDeadLetter(suite.changeEventsTopic, 'pas', 500), pac: await suite.broker.receiveDeadLetter(suite.changeEventsTopic, 'pac', 500) };
    console.log(
      `issue 11, stores cut ${restoredAt - cutAt} ms:`,
      JSON.stringify({
        keysRevoked: keys.length,
        familiesRevoked: families.length,
        appliedAfterRestoreMs: Date.now() - restoredAt,
        deadLettered: { pas: deadLettered.pas !== null, pac: deadLettered.pac !== null },
      }),
    );
    expect(keys.map((e) => e.tokenId)).toEqual([sas.key_id]);
    expect(families).toHaveLength(1);
    expect(deadLettered).toEqual({ pas: null, pac: null });
  }, 90_000);

  it('README: receiving goes on while PAC’s Redis is down, since key checks read the system of record (PostgreSQL), not Redis', async () => {
    const t = await provisionTenant(suite);
    const tokens = await suite.pas.password(t.email, PASSWORD);
    const sas = await suite.pac.sas({ refresh_token: tokens.refresh_token, rights: 'listen' });
    const receive = async () =>
      (await rawClient(suite, 'topic').post(`/tenants/${t.tenant}/topics/${t.feed}/subscriptions/default/messages/head?timeout=0`, undefined, { headers: { authorization: sas.sas_key } })).status;
    expect(await receive()).toBe(204);

    const cutAt = Date.now();
    await proxies.pac.cut();
    const statuses: number[] = [];
    try {
      // twice REVOCATION_CACHE_SEC (2 s): the topic service reuses PAC's "not revoked" that long, then asks PAC again
      while (Date.now() - cutAt < 4000) {
        statuses.push(await receive());
        await sleep(100);
      }
    } finally {
      await proxies.pac.restore();
    }
    console.log('receives while PAC’s Redis was cut:', JSON.stringify({ tried: statuses.length, answered204: statuses.filter((s) => s === 204).length }));
    expect(statuses.length).toBeGreaterThan(10);
    expect(new Set(statuses)).toEqual(new Set([204]));
  }, 60_000);
});
