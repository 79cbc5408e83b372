import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Batch, ReplayStatus } from '@keyway/contracts';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant } from '../helpers.ts';
import { operatorFiles, startKeywayAt } from './keyway.ts';

/** Issue 16: `keyway feed replay` and `keyway subscription add --start-at`, as a script runs them. */
let suite: Suite;
let dir: string;
let files: { ca: string; cert: string; key: string };
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
  dir = mkdtempSync(join(tmpdir(), 'keyway-cli-replay-'));
  files = operatorFiles(suite, dir);
});
afterAll(async () => {
  await suite?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const asOperator = (args: string[]) => startKeywayAt(suite, dir, files, ['--cert', files.cert, '--key', files.key, ...args]).done;

describe('keyway feed replay', { timeout: 90_000 }, () => {
  it('replays from a time as the operator through the entitlement service (--wait: until completed; recorded as replay.requested), from an offset with a subscriber’s --sas-key at the topic service; a bad choice of flags is exit 2', async () => {
    const { tenant, feed, email } = await provisionTenant(suite);
    const { refresh_token } = await suite.pas.password(email, PASSWORD);
    const { sas_key: sendKey } = await suite.pac.sas({ refresh_token, rights: 'send' });
    const { sas_key: listenKey } = await suite.pac.sas({ refresh_token, rights: 'listen' });
    let seq = 0;
    const publish = async (count: number): Promise<Batch[]> => {
      const batches = Array.from({ length: count }, () => makeBatch(tenant, feed, seq++));
      for (const batch of batches) await suite.topic.publish(sendKey, batch);
      return batches;
    };
    const drain = async (subscription: string): Promise<string[]> => {
      const ids: string[] = [];
      for (;;) {
        const message = await suite.topic.receive(listenKey, tenant, feed, subscription, 2);
        if (!message) return ids;
        ids.push(message.message_id);
        await suite.topic.complete(listenKey, tenant, feed, subscription, message.message_id, message.lock_token);
      }
    };

    await publish(2);
    await sleep(1100);
    const since = new Date();
    await sleep(1100);
    const history = await publish(3);
    expect(await drain('default')).toHaveLength(5);

    const waited = await asOperator(['feed', 'replay', tenant, feed, 'default', '--from', since.toISOString(), '--wait', '--json']);
    expect(waited.code).toBe(0);
    const done = JSON.parse(waited.stdout) as ReplayStatus;
    expect(done).toMatchObject({ tenant, topic: feed, subscription: 'default', status: 'completed', copied: 3 });
    expect(await drain('default')).toEqual(history.map((b) => b.id));

    const byOffset = await asOperator(['feed', 'replay', tenant, feed, 'default', '--from-offset', String(done.last_offset), '--sas-key', listenKey]);
    expect(byOffset.code).toBe(0);
    expect(byOffset.stdout).toMatch(/^status: +(running|completed)$/m);
    await sleep(1000);
    expect(await drain('default')).toEqual([history.at(-1)!.id]);
    // the operator's replay is recorded by the entitlement service under the operator, the subscriber's own
    // by the topic service under the key's id (asked together: the audit client's idle connection may be closed)
    const { events } = await suite.auditor.events({ stream: 'entitlement', tenant, action: 'replay.requested' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: 'success', detail: { actor: 'operator_certificate', feed, subscription: 'default', from_time: since.toISOString(), replay: done.replay_id } });
    expect((await suite.auditor.events({ stream: 'topic', tenant, action: 'replay.requested' })).events).toMatchObject([{ tokenId: expect.any(String) }]);

    for (const flags of [[], ['--from', since.toISOString(), '--from-offset', '0'], ['--from', 'yesterday'], ['--from-offset', '-1']]) {
      expect((await asOperator(['feed', 'replay', tenant, feed, 'default', ...flags])).code).toBe(2);
    }

    // a new subscription from that time holds the history
    expect((await asOperator(['subscription', 'add', tenant, feed, 'restored', '--start-at', since.toISOString()])).code).toBe(0);
    await sleep(1000);
    expect(await drain('restored')).toEqual(history.map((b) => b.id));
  });
});
