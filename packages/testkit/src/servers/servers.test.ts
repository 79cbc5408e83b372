import { openPostgres } from '@keyway/db';
import { createRedisStore } from '@keyway/store';
import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { processGroupAlive } from './daemon.ts';
import { startPostgresServer, startRabbitNode, startRedisServer } from './index.ts';

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
});
