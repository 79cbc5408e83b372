import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgent, fileSink } from '@keyway/importer';
import { silentLogger } from '@keyway/kit';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant, waitForLines } from '../helpers.ts';

describe.each([
  ['Redis and RabbitMQ', { redisUrl: REDIS_URL, amqpUrl: AMQP_URL }],
  ['the embedded store and broker', {}],
])('initial exchange (steps 1 to 8) on %s', (_name, infra) => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite(infra);
  });
  afterAll(() => suite?.close());

  it('delivers every published batch to the importer’s file, once and in order, acking after the write', async () => {
    const { tenant, feed, email } = await provisionTenant(suite);
    const producer = await suite.operator.createUser(tenant, { email: `producer@${tenant}.example`, password: PASSWORD, roles: ['producer', 'full-control'] });
    const producerTokens = await suite.pas.password(producer.email, PASSWORD);
    const sendKey = await suite.pac.sas({ refresh_token: producerTokens.refresh_token, rights: 'send' });

    const sinkPath = join(mkdtempSync(join(tmpdir(), 'keyway-sink-')), 'batches.jsonl');
    const agent = createAgent(
      { credentials: { kind: 'password', username: email, password: PASSWORD }, subscription: 'default', receiveTimeoutSec: 2 },
      { pas: suite.pas, pac: suite.pac, topic: suite.topic, sink: await fileSink(sinkPath), logger: silentLogger },
    );
    agent.start();

    const published = [];
    for (let seq = 0; seq < 25; seq += 1) {
      const batch = makeBatch(tenant, feed, seq);
      const answer = await suite.topic.publish(sendKey.sas_key, batch);
      expect(answer.id).toBe(batch.id);
      published.push(batch);
    }

    const lines = await waitForLines(sinkPath, published.length, 20_000);
    await agent.stop();
    const written = lines.map((line) => JSON.parse(line) as { id: string; seq: number; records: unknown[] });
    expect(written.map((b) => b.id)).toEqual(published.map((b) => b.id));
    expect(written[3]!.records).toEqual(published[3]!.records);
    expect(agent.stats.written).toBe(25);

    // Acked only after the write: nothing is left on the subscription.
    const listenKey = await suite.pac.sas({ refresh_token: producerTokens.refresh_token, rights: 'listen' });
    expect(await suite.topic.receive(listenKey.sas_key, tenant, feed, 'default', 1)).toBeNull();
  });
});
