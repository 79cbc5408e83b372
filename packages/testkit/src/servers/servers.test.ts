import { openPostgres } from '@keyway/db';
import { createRedisStore } from '@keyway/store';
import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { portAccepts, processGroupAlive } from './daemon.ts';
import type { RabbitNode } from './rabbit.ts';
import { startClamdServer, startPostgresServer, startRabbitCluster, startRabbitNode, startRedisServer } from './index.ts';

const gone = (pid: number | undefined): boolean => pid !== undefined && !processGroupAlive(pid);

describe('private server rigs', () => {
  it('redis: restart() comes back empty on the same port; close() leaves no process', async () => {
    const redis = await startRedisServer();
    const first = redis.pid();
    try {
      const store = await createRedisStore({ url: redis.url, prefix: 'rig:' });
      await store.set('a', '1');
      expect(await store.get('a')).toBe('1');
      await store.close();

      await redis.restart();
      expect(gone(first)).toBe(true);
      const again = await createRedisStore({ url: redis.url, prefix: 'rig:' });
      expect(await again.get('a')).toBeNull();
      await again.close();
    } finally {
      const last = redis.pid();
      await redis.close();
      expect(gone(last)).toBe(true);
    }
  });

  it('clamd: stop() closes its port, start() opens it again; close() leaves no process', async () => {
    const clamd = await startClamdServer();
    const first = clamd.pid();
    try {
      await clamd.stop();
      expect(gone(first)).toBe(true);
      expect(await portAccepts(clamd.port)).toBe(false);
      await clamd.start();
      expect(await portAccepts(clamd.port)).toBe(true);
    } finally {
      const last = clamd.pid();
      await clamd.close();
      expect(gone(last)).toBe(true);
    }
  });

  it('postgres: a committed row outlives restart() and stop()/start(); close() leaves no process', async () => {
    const pg = await startPostgresServer();
    const first = pg.pid();
    try {
      const db = openPostgres({ url: pg.adminUrl, max: 1 });
      await db.exec('CREATE TABLE t (v text); INSERT INTO t VALUES ($$kept$$)');
      await db.close();

      await pg.restart();
      expect(gone(first)).toBe(true);
      const second = pg.pid();
      await pg.stop();
      expect(gone(second)).toBe(true);
      await pg.start();

      const again = openPostgres({ url: pg.adminUrl, max: 1 });
      expect(await again.query('SELECT v FROM t')).toEqual([{ v: 'kept' }]);
      await again.close();
    } finally {
      const last = pg.pid();
      await pg.close();
      expect(gone(last)).toBe(true);
    }
  });

  it('rabbitmq: a persistent message in a durable queue outlives stop()/start(); close() leaves no process', { timeout: 120_000 }, async () => {
    const rabbit = await startRabbitNode();
    const first = rabbit.pid();
    try {
      const before = await amqp.connect(rabbit.url);
      const channel = await before.createConfirmChannel();
      await channel.assertQueue('rig', { durable: true });
      channel.sendToQueue('rig', Buffer.from('kept'), { persistent: true });
      await channel.waitForConfirms();
      await before.close();

      await rabbit.stop();
      expect(gone(first)).toBe(true);
      await expect(amqp.connect(rabbit.url)).rejects.toThrow();
      await rabbit.start();

      const after = await amqp.connect(rabbit.url);
      const read = await after.createChannel();
      const message = await read.get('rig', { noAck: true });
      expect(message ? message.content.toString() : null).toBe('kept');
      await after.close();
    } finally {
      const last = rabbit.pid();
      await rabbit.close();
      expect(gone(last)).toBe(true);
    }
  });

  it('rabbitmq cluster: a quorum queue spans the three nodes and keeps a confirmed message through a SIGKILL of the node it was sent to, which rejoins', { timeout: 180_000 }, async () => {
    const cluster = await startRabbitCluster();
    const pids = () => cluster.nodes.map((n) => n.pid());
    const started = pids();
    try {
      const [first, second] = cluster.nodes as [RabbitNode, RabbitNode];
      const running = JSON.parse(await cluster.ctl(first, 'cluster_status', '--formatter', 'json')) as { running_nodes: string[] };
      expect(running.running_nodes.sort()).toEqual(cluster.nodes.map((n) => n.name).sort());

      const before = await amqp.connect(first.url);
      const channel = await before.createConfirmChannel();
      await channel.assertQueue('rig-quorum', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      channel.sendToQueue('rig-quorum', Buffer.from('kept'), { persistent: true });
      await channel.waitForConfirms();
      const members = await cluster.ctl(second, 'list_queues', '-q', '--no-table-headers', 'name', 'members');
      for (const node of cluster.nodes) expect(members).toContain(node.name);

      before.on('error', () => undefined);
      await first.kill();
      expect(gone(started[0])).toBe(true);
      const after = await amqp.connect(second.url);
      const read = await after.createChannel();
      const message = await read.get('rig-quorum', { noAck: true });
      expect(message ? message.content.toString() : null).toBe('kept');
      await after.close();

      await first.start();
      await cluster.ctl(second, 'await_online_nodes', '3', '--timeout', '60');
    } finally {
      const last = pids();
      await cluster.close();
      for (const pid of last) expect(gone(pid)).toBe(true);
    }
  });
});
