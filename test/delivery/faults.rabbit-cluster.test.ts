import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { startRabbitCluster, type RabbitCluster, type RabbitNode } from '@keyway/testkit/servers';
import { subscriptionQueue } from '@keyway/broker';
import { PASSWORD, rawClient } from '../helpers.ts';
import { deliveryRig, holdsAcceptedAfter, timeline, expectEveryAcceptedDelivered } from './delivery-rig.ts';

// Issue 12: a RabbitMQ cluster that loses a node loses nothing. Three private nodes (the machine's
// RabbitMQ is never touched), every service given all three URLs; the node holding the topic
// service's connection and the importer's queue leader is SIGKILLed mid-traffic and started again.

const connectionName = `keyway-topic-cluster-${randomUUID().slice(0, 8)}`;
let cluster: RabbitCluster | undefined;
let suite: Suite | undefined;
beforeAll(async () => {
  cluster = await startRabbitCluster();
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: cluster.url, topic: { lockDurationSec: 2, connectionName } });
}, 150_000);
afterAll(async () => {
  // the nodes and their directories go even when the suite closes badly
  try {
    await suite?.close();
  } finally {
    await cluster?.close();
  }
}, 90_000);

async function until(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

/** The node a connection (by its connection_name) is attached to, asked of `via`; undefined when it has none. */
async function nodeOf(cluster: RabbitCluster, via: RabbitNode, name: string): Promise<RabbitNode | undefined> {
  const listed = await cluster.ctl(via, 'list_connections', '-q', '--no-table-headers', 'port', 'client_properties');
  const line = listed.split('\n').find((l) => l.includes(`{"connection_name","${name}"}`));
  const port = Number(line?.split('\t')[0]);
  return cluster.nodes.find((n) => n.port === port);
}

/** The node leading a quorum queue, asked of `via`. */
async function leaderOf(cluster: RabbitCluster, via: RabbitNode, queue: string): Promise<string | undefined> {
  const listed = await cluster.ctl(via, 'list_queues', '-q', '--no-table-headers', 'name', 'leader');
  return listed
    .split('\n')
    .map((l) => l.split('\t'))
    .find(([name]) => name === queue)?.[1];
}

describe('delivery through a three-node RabbitMQ cluster that loses a node', () => {
  it('loses no accepted batch when the node the services use is killed mid-traffic and restarted; publishers and consumers move to a surviving node by themselves', async () => {
    if (!cluster || !suite) throw new Error('cluster or suite did not start');
    const { nodes } = cluster;
    const stage = timeline('rabbit-cluster');
    const rig = await deliveryRig(suite);
    const context = () => `${rig.outcomes.toString()}\nagent: ${rig.agentLog.join('\n       ')}`;
    const topicHttp = rawClient(suite, 'topic');
    // a user whose removal, made while the node is down, must still reach PAS and PAC (the outbox publishes, their consumers apply)
    const removed = await suite.operator.createUser(rig.tenant, { email: `removed@${rig.tenant}.example`, password: PASSWORD, roles: ['full-control'] });
    const { refresh_token } = await suite.pas.password(removed.email, PASSWORD);
    const { key_id: removedKey } = await suite.pac.sas({ refresh_token, rights: 'send' });
    const revocations = async () => {
      const [keys, families] = await Promise.all([
        suite?.auditor.events({ tenant: rig.tenant, action: 'sas_key.revoked', limit: 50 }),
        suite?.auditor.events({ tenant: rig.tenant, action: 'refresh_family.revoked', limit: 50 }),
      ]);
      return { key: keys?.events.some((e) => e.tokenId === removedKey) ?? false, family: families?.events.some((e) => e.reason === 'user.removed') ?? false };
    };
    stage('cluster, suite, tenant, producer and importer ready');

    rig.agent.start();
    // Slower than the importer, so the figures are the failover's rather than a backlog's; a batch gets
    // 60 s (not 15 s) of retries, as the first publishes after the kill wait for the services to move.
    const producer = rig.produce({ workers: 2, pauseMs: 150, retryMs: 100, giveUpMs: 60_000 });
    const figures: Record<string, unknown> = {};
    try {
      try {
        expect(await rig.waitForSink((ids) => ids.length >= 30, 30_000), `the importer never got going; ${context()}`).toBe(true);
        const queue = subscriptionQueue({ tenant: rig.tenant, topic: rig.topic }, 'default');
        const victim = await nodeOf(cluster, nodes[1] as RabbitNode, connectionName);
        expect(victim, 'the topic service has no connection to the cluster').toBeDefined();
        if (!victim) return;
        const survivor = nodes.find((n) => n !== victim) as RabbitNode;
        figures.topicNode = victim.name;
        figures.queueLeader = await leaderOf(cluster, survivor, queue);
        stage(`sink holds 30; killing ${victim.name} (topic connection; leader of the importer's queue: ${String(figures.queueLeader)})`);

        const acceptedAtKill = producer.published.length;
        const killedAt = Date.now();
        await victim.kill();
        stage('node killed; removing a user while it is down');
        await suite.operator.deleteUser(rig.tenant, removed.id);

        const resumed = await rig.waitForSink(holdsAcceptedAfter(producer, acceptedAtKill), 45_000);
        figures.deliveryResumedMs = Date.now() - killedAt;
        expect(resumed, `no delivery after the kill; ${context()}`).toBe(true);
        const ready = await until(async () => (await topicHttp.get('/readyz')).status === 200, 15_000);
        expect(ready, 'topic /readyz never answered 200 again').toBe(true);
        const moved = await nodeOf(cluster, survivor, connectionName);
        figures.topicNodeAfter = moved?.name;
        expect(moved && moved !== victim, 'the topic service did not reconnect to a surviving node').toBe(true);
        const applied = await until(async () => Object.values(await revocations()).every(Boolean), 30_000);
        figures.revocationAppliedMs = Date.now() - killedAt;
        expect(applied, `the removal made while the node was down did not reach PAS and PAC: ${JSON.stringify(await revocations())}`).toBe(true);
        figures.newLeader = await leaderOf(cluster, survivor, queue);
        stage('delivery resumed on the surviving nodes, removal applied; restarting the killed node');

        const acceptedAtRestart = producer.published.length;
        const restartingAt = Date.now();
        await victim.start();
        await cluster.ctl(survivor, 'await_online_nodes', String(nodes.length), '--timeout', '60');
        figures.rejoinMs = Date.now() - restartingAt;
        const after = await rig.waitForSink(holdsAcceptedAfter(producer, acceptedAtRestart), 30_000);
        expect(after, `no delivery after the node came back; ${context()}`).toBe(true);
        stage('node back in the cluster, delivery goes on; stopping the producer');
      } finally {
        await producer.stop();
      }
      await expectEveryAcceptedDelivered(rig, producer, 'rabbit-cluster', { timeoutMs: 30_000, stage, context, figures: () => figures });
      // The failover was seen as an outage (503) or a cut, never as an internal error.
      expect(rig.outcomes.internalErrors(), rig.outcomes.toString()).toBe(0);
    } finally {
      await rig.stopAgent();
    }
  }, 180_000);
});
