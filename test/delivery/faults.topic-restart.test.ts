import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { deliveryRig, timeline, holdsAcceptedAfter, expectEveryAcceptedDelivered } from './delivery-rig.ts';

let suite: Suite;
beforeAll(async () => {
  // Locked batches come back after 2 s instead of the default 60.
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, topic: { lockDurationSec: 2 } });
});
afterAll(() => suite?.close());

describe('delivery through a topic service restart', () => {
  it('loses no batch: unacked ones come back, the producer and the importer recover by themselves', async () => {
    const stage = timeline('topic-restart');
    const rig = await deliveryRig(suite);
    const context = () => `${rig.outcomes.toString()}\nagent: ${rig.agentLog.join('\n       ')}`;
    stage('tenant, producer and importer ready');
    rig.agent.start();
    const producer = rig.produce();
    let heldId: string | undefined;
    try {
      try {
        expect(await rig.waitForSink((ids) => ids.length >= 30, 15_000), `the importer never got going; ${context()}`).toBe(true);
        // One batch taken off the importer's subscription and held locked, never settled: it must come
        // back when the instance that locked it goes away (and its lock with it).
        const held = await suite.topic.receive(rig.listenKey, rig.tenant, rig.topic, 'default', 5);
        expect(held, 'nothing to hold').not.toBeNull();
        heldId = held!.batch.id;
        stage('sink holds 30, one batch held locked; restarting the topic service');

        // Down for a second: open connections (publishes in flight, the agent's long poll) are cut,
        // locked batches go back to the queue, the RabbitMQ connection closes; then a new instance
        // with a new connection listens on the same port.
        await suite.restartTopic({ downMs: 1000 });
        stage('topic service restarted');
        const acceptedAtRestart = producer.published.length;
        // the new instance knows nothing of the old one's locks
        await expect(suite.topic.complete(rig.listenKey, rig.tenant, rig.topic, 'default', held!.message_id, held!.lock_token)).rejects.toMatchObject({
          status: 410,
          code: 'lock_lost',
        });

        // Recovery without help: batches accepted by the new instance reach the sink.
        const recovered = await rig.waitForSink(holdsAcceptedAfter(producer, acceptedAtRestart), 15_000);
        expect(recovered, `no delivery after the restart; ${context()}`).toBe(true);
        stage('delivery resumed; stopping the producer');
      } finally {
        await producer.stop();
      }
      await expectEveryAcceptedDelivered(rig, producer, 'topic-restart', { timeoutMs: 15_000, stage, context });
      // the batch held locked across the restart came back and reached the importer
      expect(rig.sinkIds()).toContain(heldId);
      // the restart was felt: something was cut or refused while the service was down ...
      expect(
        rig.outcomes.count((_, outcome) => outcome !== '201'),
        rig.outcomes.toString(),
      ).toBeGreaterThan(0);
      // ... and never answered as an internal error
      expect(rig.outcomes.internalErrors(), rig.outcomes.toString()).toBe(0);
    } finally {
      await rig.stopAgent();
    }
  }, 60_000);
});
