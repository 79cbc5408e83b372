import { describe, expect, it, vi } from 'vitest';
import { createMemoryBroker, type ReplayOptions } from '@keyway/broker';
import { OAuthError, silentLogger } from '@keyway/kit';
import { createMemoryStore } from '@keyway/store';
import type { FeedPolicies } from './policy.ts';
import { replayJobs } from './replays.ts';

const topic = { tenant: 'acme', topic: 'edr' };
const policies: FeedPolicies = { of: async () => ({ retentionSec: 86_400, retentionBytes: 1_000_000, messageTtlSec: 60, duplicateWindowSec: 0 }) };

/** two instances sharing a store, with a broker whose copies run until aborted */
function setup() {
  let clock = Date.parse('2026-12-01T00:00:00Z');
  const broker = createMemoryBroker();
  const replay = vi.spyOn(broker, 'replay').mockImplementation(
    (_topic, _subscription, _from, options: ReplayOptions = {}) =>
      new Promise((resolve) => {
        options.onProgress?.({ copied: 1, firstOffset: 7, lastOffset: 7 });
        options.signal?.addEventListener('abort', () => resolve({ copied: 1, firstOffset: 7, lastOffset: 7 }));
      }),
  );
  const store = createMemoryStore({ prefix: 'replays-test:' });
  const instance = () => replayJobs({ broker, store, policies, logger: silentLogger, now: () => clock });
  return { a: instance(), b: instance(), replay, advance: (ms: number) => (clock += ms) };
}

describe('replay jobs', () => {
  it('copy with the feed’s TTL; at most 3 running per subscription over all instances (429); a record its instance stopped refreshing reads interrupted and no longer counts', async () => {
    const t = setup();
    const started = [];
    for (let i = 0; i < 3; i++) started.push(await t.a.start(topic, 'siem', { from_offset: 0 }));
    expect(t.replay).toHaveBeenCalledWith(topic, 'siem', { offset: 0 }, expect.objectContaining({ ttlMs: 60_000 }));
    const refused = await t.b.start(topic, 'siem', { from_offset: 0 }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(OAuthError);
    expect(refused).toMatchObject({ status: 429, code: 'too_many_requests' });
    // another subscription is not limited by these
    await t.b.start(topic, 'other', { from_time: '2026-11-30T00:00:00Z' });
    expect(t.replay).toHaveBeenLastCalledWith(topic, 'other', { time: Date.parse('2026-11-30T00:00:00Z') }, expect.anything());

    expect(await t.b.status(topic, 'siem', started[0]!.replay_id)).toMatchObject({ status: 'running' });
    // instance a died: its records are not refreshed any more
    t.advance(31_000);
    expect(await t.b.status(topic, 'siem', started[0]!.replay_id)).toMatchObject({ status: 'interrupted' });
    await expect(t.b.start(topic, 'siem', { from_offset: 8 })).resolves.toMatchObject({ status: 'running' });
    await t.b.close();
  });

  it('close() records each replay interrupted with its progress, to go on from last_offset + 1; the status answers only for its subscription', async () => {
    const t = setup();
    const started = await t.a.start(topic, 'siem', { from_offset: 0 });
    await t.a.close();
    expect(await t.b.status(topic, 'siem', started.replay_id)).toMatchObject({ status: 'interrupted', copied: 1, first_offset: 7, last_offset: 7, finished_at: expect.any(String) });
    expect(await t.b.status(topic, 'default', started.replay_id)).toBeUndefined();
    expect(await t.b.status({ tenant: 'other', topic: 'edr' }, 'siem', started.replay_id)).toBeUndefined();
  });

  it('a time in the future is 400 before anything starts', async () => {
    const t = setup();
    expect(() => t.a.check({ from_time: new Date(Date.parse('2026-12-01T00:00:01Z')).toISOString() })).toThrow(expect.objectContaining({ status: 400, code: 'invalid_request' }));
    await expect(t.a.start(topic, 'siem', { from_time: '2026-12-02T00:00:00Z' })).rejects.toMatchObject({ status: 400 });
    expect(t.replay).not.toHaveBeenCalled();
  });
});
