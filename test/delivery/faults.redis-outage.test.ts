import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, UnreachableError } from '@keyway/clients';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { tcpProxy, viaProxy, type TcpProxy } from '@keyway/testkit/tcp-proxy';
import { deliveryRig, timeline, type Outcomes, holdsAcceptedAfter, expectEveryAcceptedDelivered } from './delivery-rig.ts';
import { PASSWORD, rawClient } from '../helpers.ts';

const OUTAGE_MS = 3000;

let proxy: TcpProxy;
let suite: Suite;
beforeAll(async () => {
  // Every store of every service reaches Redis through the proxy, so the test can take Redis away.
  const target = new URL(REDIS_URL);
  proxy = await tcpProxy(target.hostname, Number(target.port || 6379));
  suite = await startSuite({ redisUrl: viaProxy(REDIS_URL, proxy), amqpUrl: AMQP_URL, topic: { lockDurationSec: 2 } });
});
afterAll(async () => {
  // a failed test may leave the proxy cut; the suite's cleanup needs Redis
  await proxy?.restore().catch(() => undefined);
  await suite?.close();
});

/** A password grant at PAS, its outcome recorded as `token <status>` (and its error code for a refusal). */
async function tokenProbe(suite: Suite, email: string, outcomes: Outcomes, codes: Set<string>): Promise<void> {
  try {
    await suite.pas.password(email, PASSWORD);
    outcomes.add('token', '200');
  } catch (err) {
    if (err instanceof ApiError) {
      outcomes.add('token', String(err.status));
      codes.add(`${err.status} ${err.code}`);
    } else if (err instanceof UnreachableError) outcomes.add('token', `network:${err.causeCode ?? 'unknown'}`);
    else throw err;
  }
}

describe('delivery through a Redis outage', () => {
  it('answers 503 temporarily_unavailable while Redis is gone, never 500, and recovers by itself without losing a batch', async () => {
    const stage = timeline('redis-outage');
    const rig = await deliveryRig(suite);
    const context = () => `${rig.outcomes.toString()}\nagent: ${rig.agentLog.join('\n       ')}`;
    const { email } = await suite.operator.createUser(rig.tenant, { email: `probe@${rig.tenant}.example`, password: PASSWORD, roles: ['full-control'] });
    const topicHttp = rawClient(suite, 'topic');
    const pasHttp = rawClient(suite, 'pas');
    const readyz = async (where: 'topic' | 'pas') => {
      const { status } = await (where === 'topic' ? topicHttp : pasHttp).get('/readyz');
      rig.outcomes.add(`${where}.readyz`, String(status));
      return status;
    };
    const codes = new Set<string>();
    stage('tenant, producer and importer ready');

    rig.agent.start();
    const producer = rig.produce();
    let cut = false;
    try {
      try {
        expect(await rig.waitForSink((ids) => ids.length >= 30, 15_000), `the importer never got going; ${context()}`).toBe(true);
        stage('sink holds 30; cutting Redis');
        await proxy.cut();
        cut = true;
        const restoreAt = Date.now() + OUTAGE_MS;
        // While Redis is away: a token request and both readiness checks, a few times a second.
        while (Date.now() < restoreAt) {
          await Promise.all([tokenProbe(suite, email, rig.outcomes, codes), readyz('topic'), readyz('pas')]);
          await sleep(200);
        }
        await proxy.restore();
        cut = false;
        const acceptedAtRestore = producer.published.length;
        stage('Redis restored');

        // Everything comes back without a restart: ready, tokens issued, delivery resumed.
        const readyDeadline = Date.now() + 10_000;
        while ((await readyz('topic')) !== 200 || (await readyz('pas')) !== 200) {
          expect(Date.now() < readyDeadline, `not ready again 10 s after Redis returned; ${context()}`).toBe(true);
          await sleep(100);
        }
        await expect(suite.pas.password(email, PASSWORD)).resolves.toMatchObject({ token_type: 'Bearer' });
        stage('ready again, tokens issued');
        const recovered = await rig.waitForSink(holdsAcceptedAfter(producer, acceptedAtRestore), 15_000);
        expect(recovered, `no delivery after Redis returned; ${context()}`).toBe(true);
        stage('delivery resumed; stopping the producer');
      } finally {
        if (cut) await proxy.restore();
        await producer.stop();
      }
      await expectEveryAcceptedDelivered(rig, producer, 'redis-outage', { timeoutMs: 15_000, stage, context, figures: () => ({ tokenRefusals: [...codes].join(', ') }) });
      const seen = rig.outcomes.toString();
      // The outage is an outage: 503 temporarily_unavailable at the token endpoint or at publish, /readyz 503 ...
      expect(
        rig.outcomes.count((where, outcome) => (where === 'token' || where === 'publish') && outcome === '503'),
        seen,
      ).toBeGreaterThan(0);
      expect(
        [...codes].filter((c) => c.startsWith('503')).every((c) => c === '503 temporarily_unavailable'),
        [...codes].join(', '),
      ).toBe(true);
      expect(
        rig.outcomes.count((where, outcome) => where === 'topic.readyz' && outcome === '503'),
        seen,
      ).toBeGreaterThan(0);
      expect(
        rig.outcomes.count((where, outcome) => where === 'pas.readyz' && outcome === '503'),
        seen,
      ).toBeGreaterThan(0);
      // ... and never an internal error, at any endpoint the producer, the importer or the probes called.
      expect(rig.outcomes.internalErrors(), seen).toBe(0);
    } finally {
      await rig.stopAgent();
    }
  }, 60_000);
});
