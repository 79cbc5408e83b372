import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@keyway/kit';
import { fileReplayMarker } from './replay-marker.ts';

const dir = mkdtempSync(join(tmpdir(), 'keyway-marker-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the REPLAY_FROM marker file', () => {
  it('keeps the replay id before the replay completed, and then that it completed', async () => {
    const marker = fileReplayMarker(join(dir, 'a.replay'));
    expect(await marker.replayed()).toBeUndefined();
    await marker.record({ from: '2026-12-01T00:00:00.000Z', replayId: 'r-1', done: false });
    expect(await fileReplayMarker(join(dir, 'a.replay')).replayed()).toEqual({ from: '2026-12-01T00:00:00.000Z', replayId: 'r-1', done: false });
    await marker.record({ from: '2026-12-01T00:00:00.000Z', replayId: 'r-2', done: true });
    expect(await marker.replayed()).toEqual({ from: '2026-12-01T00:00:00.000Z', replayId: 'r-2', done: true });
  });

  it('a file that is not a marker (cut short, or another shape) is a configuration error naming it', async () => {
    for (const [name, text] of [
      ['cut.replay', '{"replay_from": "2026-'],
      ['other.replay', '{"from": 1}'],
    ] as const) {
      writeFileSync(join(dir, name), text);
      const err = await fileReplayMarker(join(dir, name))
        .replayed()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(join(dir, name));
    }
  });
});
