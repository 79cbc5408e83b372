import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAgent, fileSink } from '@keyway/importer';
import { silentLogger } from '@keyway/kit';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant, readLines } from '../helpers.ts';

let suite: Suite;
beforeAll(async () => {
  // Lifetimes in seconds, not days, so every credential goes through several generations.
  suite = await startSuite({
    redisUrl: REDIS_URL,
    amqpUrl: AMQP_URL,
    lifetimes: { accessTtlSec: 2, refreshTtlSec: 5, sasTtlSec: 3, clockToleranceSec: 0 },
    refreshReuseLeewaySec: 0,
  });
});
afterAll(() => suite?.close());

it('keeps pulling through SAS renewals, refresh rotations and a re-login after its refresh family is revoked', async () => {
  const { tenant, feed, email } = await provisionTenant(suite);
  const producer = await suite.operator.createUser(tenant, { email: `producer@${tenant}.example`, password: PASSWORD, roles: ['full-control'] });
  const sinkPath = join(mkdtempSync(join(tmpdir(), 'keyway-generations-')), 'batches.jsonl');
  const agent = createAgent(
    { credentials: { kind: 'password', username: email, password: PASSWORD }, subscription: 'default', receiveTimeoutSec: 1 },
    { pas: suite.pas, pac: suite.pac, topic: suite.topic, sink: await fileSink(sinkPath), logger: silentLogger },
  );
  agent.start();

  // The producer keeps its own credentials fresh the simple way: a new login and key per batch.
  const published: string[] = [];
  const publish = async (seq: number) => {
    const tokens = await suite.pas.password(producer.email, PASSWORD);
    const { sas_key } = await suite.pac.sas({ refresh_token: tokens.refresh_token, rights: 'send' });
    const batch = makeBatch(tenant, feed, seq);
    await suite.topic.publish(sas_key, batch);
    published.push(batch.id);
  };

  // Traffic for at least `minMs`, and on until the agent has gone through what the phase is about: on a
  // loaded machine timers run late, so a fixed window may hold fewer generations than the lifetimes imply.
  const runUntil = async (minMs: number, done: () => boolean, maxMs = 30_000) => {
    const started = Date.now();
    while (Date.now() - started < minMs || (!done() && Date.now() - started < maxMs)) {
      await publish(published.length);
      await sleep(250);
    }
  };
  await runUntil(8000, () => agent.stats.refreshes >= 1 && agent.stats.sasKeys >= 2);
  const loginsBefore = agent.stats.logins;
  // Revoke every refresh family, the agent's included (what PAS's revocation does): the agent must
  // notice and log in again with its credentials.
  const families = await suite.stores.pas.keys('family:');
  expect(families.length).toBeGreaterThan(0);
  await Promise.all(families.map((key) => suite.stores.pas.del(key)));
  const refreshesBefore = agent.stats.refreshes;
  await runUntil(8000, () => agent.stats.logins > loginsBefore && agent.stats.refreshes > refreshesBefore);

  const deadline = Date.now() + 10_000;
  const written = () => readLines(sinkPath).map((l) => (JSON.parse(l) as { id: string }).id);
  while (written().length < published.length && Date.now() < deadline) await sleep(100);
  await agent.stop();

  expect(new Set(written())).toEqual(new Set(published));
  expect(written()).toHaveLength(published.length);
  // 16 s or more of traffic with 3-second SAS keys and 5-second refresh tokens: several generations of
  // each, and a refresh of the family the re-login started.
  expect(agent.stats.sasKeys).toBeGreaterThanOrEqual(3);
  expect(agent.stats.refreshes).toBeGreaterThanOrEqual(2);
  expect(agent.stats.logins).toBeGreaterThan(loginsBefore);
  expect(agent.stats.refreshes).toBeGreaterThan(refreshesBefore);
}, 120_000);
