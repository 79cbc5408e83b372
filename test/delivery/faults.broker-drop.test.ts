import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { deliveryRig, timeline, holdsAcceptedAfter, expectEveryAcceptedDelivered } from './delivery-rig.ts';
import { rawClient } from '../helpers.ts';

const run = promisify(execFile);

async function until(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** Closes a connection from the RabbitMQ side, as an operator, a node restart or a network partition would. */
async function dropConnection(connectionName: string): Promise<void> {
  const { stdout } = await run('rabbitmqctl', ['list_connections', '-q', 'pid', 'client_properties'], { timeout: 30_000 });
  const line = stdout.split('\n').find((l) => l.includes(`{"connection_name","${connectionName}"}`));
  const pid = line?.split('\t')[0];
  if (!pid) throw new Error(`connection ${connectionName} not found:\n${stdout}`);
  await run('rabbitmqctl', ['close_connection', pid, 'test'], { timeout: 30_000 });
}

const connectionName = `keyway-topic-fault-${randomUUID().slice(0, 8)}`;
let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, topic: { lockDurationSec: 2, connectionName } });
});
afterAll(() => suite?.close());

describe('delivery through a RabbitMQ connection dropped by the broker', () => {
  it('loses no batch: the topic service reconnects by itself, publishes in the gap get 503 and are sent again', async () => {
    const stage = timeline('broker-drop');
    const rig = await deliveryRig(suite);
    const context = () => `${rig.outcomes.toString()}\nagent: ${rig.agentLog.join('\n       ')}`;
    const topicHttp = rawClient(suite, 'topic');
    stage('tenant, producer and importer ready');
    rig.agent.start();
    // A faster producer than in the other tests, so publishes fall into the short reconnect gap.
    const producer = rig.produce({ workers: 3, pauseMs: 20, retryMs: 50 });
    // /readyz is watched from the drop on: the broker check fails until the reconnect
    const watching = { on: false };
    let watcher: Promise<number[]> = Promise.resolve([]);
    try {
      try {
        expect(await rig.waitForSink((ids) => ids.length >= 30, 15_000), `the importer never got going; ${context()}`).toBe(true);
        watching.on = true;
        watcher = (async () => {
          const statuses: number[] = [];
          while (watching.on) {
            statuses.push(
              await topicHttp.get('/readyz').then(
                (r) => r.status,
                () => 0,
              ),
            );
            await sleep(20);
          }
          return statuses;
        })();
        stage('sink holds 30; dropping the connection');
        await dropConnection(connectionName);
        // rabbitmqctl returns once the connection is closed: everything accepted from here on went through the new one
        const acceptedAtDrop = producer.published.length;
        stage('connection dropped');

        // Recovery without help: batches accepted after the drop reach the sink (the producer keeps
        // publishing, so this is not "the sink caught up", only "delivery resumed").
        const recovered = await rig.waitForSink(holdsAcceptedAfter(producer, acceptedAtDrop), 15_000);
        expect(recovered, `no delivery after the drop; ${context()}`).toBe(true);
        // reconnected by itself: ready again
        const ready = await until(async () => (await topicHttp.get('/readyz')).status === 200, 10_000);
        expect(ready, 'topic /readyz never answered 200 again').toBe(true);
        stage('delivery resumed, ready again; stopping the producer');
      } finally {
        watching.on = false;
        await producer.stop();
      }
      const readyz = await watcher;
      await expectEveryAcceptedDelivered(rig, producer, 'broker-drop', {
        timeoutMs: 15_000,
        stage,
        context,
        figures: () => ({ readyz: `${readyz.length} probes, ${readyz.filter((s) => s === 503).length} answered 503` }),
      });
      // The gap was seen as an outage (503), never as an internal error, and the producer retried through it.
      expect(
        rig.outcomes.count((where, outcome) => where === 'publish' && outcome === '503'),
        rig.outcomes.toString(),
      ).toBeGreaterThan(0);
      expect(rig.outcomes.internalErrors(), rig.outcomes.toString()).toBe(0);
    } finally {
      await rig.stopAgent();
    }
  }, 60_000);
});
