import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '@keyway/clients';
import { AMQP_URL, startSuite, type Suite } from '@keyway/testkit';
import { startRedisServer, type RedisServer } from '@keyway/testkit/servers';
import { compare, deliveryRig, holdsAcceptedAfter, holdsEveryAccepted, report, timeline } from './delivery-rig.ts';
import { makeBatch, PASSWORD, rawClient } from '../helpers.ts';

// Issue 11: Redis restarted EMPTY (no persistence) mid-traffic. Records (tenants, users, keys) live in
// PostgreSQL, so nothing an operator made is lost; Redis held only what may be rebuilt or lost.
// A private redis-server: the machine's Redis is never restarted.
let redis: RedisServer;
let suite: Suite;
beforeAll(async () => {
  redis = await startRedisServer();
  suite = await startSuite({ redisUrl: redis.url, amqpUrl: AMQP_URL, topic: { lockDurationSec: 2 } });
});
afterAll(async () => {
  await suite?.close();
  await redis?.close();
});

const refusal = (err: unknown) => (err instanceof ApiError ? `${err.status} ${err.code}` : String(err));

describe('delivery through a Redis restart that loses everything Redis held', () => {
  it('keeps tenants, users and keys; a removed user stays removed; the importer recovers; never a 500', async () => {
    const stage = timeline('redis-restart');
    const rig = await deliveryRig(suite);
    const context = () => `${rig.outcomes.toString()}\nagent: ${rig.agentLog.join('\n       ')}`;
    const kept = await suite.operator.createUser(rig.tenant, { email: `kept@${rig.tenant}.example`, password: PASSWORD, roles: ['full-control'] });
    const removed = await suite.operator.createUser(rig.tenant, { email: `removed@${rig.tenant}.example`, password: PASSWORD, roles: ['full-control'] });
    await suite.operator.deleteUser(rig.tenant, removed.id);
    const tenantBefore = await suite.operator.getTenant(rig.tenant);
    const usersBefore = (await suite.operator.listUsers(rig.tenant)).users.map((u) => u.email).sort();
    const sasPolicyBefore = await suite.pacOperator.sasPolicyKeys(rig.tenant, 'listen');
    const jwksBefore = (await rawClient(suite, 'pas').get('/.well-known/jwks.json')).data as { keys: { kid: string }[] };
    /** every stream's newest seq, and the events of the tenant the trail holds */
    const trail = async () => ({
      heads: Object.fromEntries(
        (await suite.audit.query<{ stream: string; head: string }>('SELECT stream, max(seq)::text AS head FROM keyway_audit.events GROUP BY stream')).map((r) => [r.stream, Number(r.head)]),
      ),
      tenantEvents: (await suite.auditor.events({ tenant: rig.tenant, limit: 500 })).events.map((e) => e.id),
    });
    const trailBefore = await trail();
    expect(trailBefore.tenantEvents.length).toBeGreaterThan(0);
    stage('tenant, users (one removed), producer and importer ready');

    rig.agent.start();
    const producer = rig.produce();
    try {
      expect(await rig.waitForSink((ids) => ids.length >= 30, 15_000), `the importer never got going; ${context()}`).toBe(true);
      stage('sink holds 30; restarting Redis empty');
      await redis.restart();
      const acceptedAtRestart = producer.published.length;
      stage('Redis back, empty');

      const recovered = await rig.waitForSink(holdsAcceptedAfter(producer, acceptedAtRestart), 30_000);
      expect(recovered, `no delivery after the restart; ${context()}`).toBe(true);
      stage('delivery resumed');
    } finally {
      await producer.stop();
    }
    const complete = await rig.waitForSink(holdsEveryAccepted(producer), 15_000);
    await rig.stopAgent();
    const verdict = compare(producer, rig.sinkIds());
    report('redis-restart', { summary: verdict.summary, outcomes: rig.outcomes.toString(), agentErrors: rig.agent.stats.errors });

    // the audit trail lost nothing: every stream goes on from where it was, and it verifies
    const trailAfter = await trail();
    for (const [stream, head] of Object.entries(trailBefore.heads)) expect(trailAfter.heads[stream], stream).toBeGreaterThanOrEqual(head);
    expect(trailAfter.tenantEvents).toEqual(expect.arrayContaining(trailBefore.tenantEvents));
    expect(await suite.auditor.verifyAll()).toMatchObject({ ok: true });
    // the operator's records are all there, unchanged
    expect(await suite.operator.getTenant(rig.tenant)).toEqual(tenantBefore);
    expect((await suite.operator.listUsers(rig.tenant)).users.map((u) => u.email).sort()).toEqual(usersBefore);
    expect(usersBefore).not.toContain(removed.email);
    // keys: PAC's tenant keys (a SAS key minted before still publishes), PAS's signing keys
    expect(await suite.pacOperator.sasPolicyKeys(rig.tenant, 'listen')).toEqual(sasPolicyBefore);
    await expect(suite.topic.publish(rig.sendKey, makeBatch(rig.tenant, rig.topic, 1_000_000))).resolves.toMatchObject({ tenant: rig.tenant });
    const jwksAfter = (await rawClient(suite, 'pas').get('/.well-known/jwks.json')).data as { keys: { kid: string }[] };
    expect(jwksAfter.keys.map((k) => k.kid)).toEqual(expect.arrayContaining(jwksBefore.keys.map((k) => k.kid)));
    // users: the kept one logs in, the removed one stays out
    await expect(suite.pas.password(kept.email, PASSWORD)).resolves.toMatchObject({ token_type: 'Bearer' });
    const refused = await suite.pas.password(removed.email, PASSWORD).then(
      () => 'issued',
      (err: unknown) => refusal(err),
    );
    expect(refused).toBe('400 invalid_grant');

    // the importer came back by itself and lost nothing that was accepted
    expect(complete, `${verdict.summary}; ${context()}`).toBe(true);
    expect(verdict.missing, verdict.summary).toEqual([]);
    expect(producer.gaveUp, verdict.summary).toEqual([]);
    expect(rig.outcomes.internalErrors(), rig.outcomes.toString()).toBe(0);
  }, 120_000);
});
