import { constants, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileCheckpoint } from './checkpoint.ts';
import { openFlags } from './sinks/test-fixtures.ts';

const statePath = () => join(mkdtempSync(join(tmpdir(), 'keyway-checkpoint-')), 'state', 'importer.checkpoint');
const idLines = (path: string) => readFileSync(path, 'utf8').split('\n').slice(1, -1);

describe('checkpoint (state file of written batch ids)', () => {
  it('remembers recorded ids across a restart', async () => {
    const path = statePath();
    const first = await fileCheckpoint(path);
    for (const id of ['b-1', 'b-2', 'b-3']) await first.record(id);
    await first.close();

    const second = await fileCheckpoint(path);
    expect(['b-1', 'b-2', 'b-3'].map((id) => second.has(id))).toEqual([true, true, true]);
    expect(second.has('b-4')).toBe(false);
    await second.close();
  });

  it('clear (a replay) forgets every id, durably; ids recorded after it are kept', async () => {
    const path = statePath();
    const first = await fileCheckpoint(path);
    for (const id of ['b-1', 'b-2']) await first.record(id);
    await first.clear();
    expect(first.has('b-1')).toBe(false);
    await first.record('b-3');
    await first.close();
    expect(idLines(path)).toEqual(['b-3']);
    const second = await fileCheckpoint(path);
    expect([second.has('b-1'), second.has('b-3')]).toEqual([false, true]);
    await second.close();
  });

  it('ignores a torn last line (a kill in the middle of an append) and drops it from the file', async () => {
    const path = statePath();
    const first = await fileCheckpoint(path);
    for (const id of ['b-1', 'b-2']) await first.record(id);
    await first.close();
    writeFileSync(path, `${readFileSync(path, 'utf8')}b-3-torn`);

    const second = await fileCheckpoint(path);
    expect(second.has('b-2')).toBe(true);
    expect(second.has('b-3-torn')).toBe(false);
    await second.record('b-3');
    await second.close();
    // The next id stands on a line of its own, not fused with the fragment.
    expect(idLines(path)).toEqual(['b-1', 'b-2', 'b-3']);
    const third = await fileCheckpoint(path);
    expect(third.has('b-3')).toBe(true);
    await third.close();
  });

  it('compacts to the last N ids, so the file stays bounded and the newest survive', async () => {
    const path = statePath();
    const checkpoint = await fileCheckpoint(path, { capacity: 5 });
    for (let i = 0; i < 23; i += 1) {
      await checkpoint.record(`b-${i}`);
      expect(idLines(path).length).toBeLessThanOrEqual(10);
    }
    await checkpoint.close();

    const reloaded = await fileCheckpoint(path, { capacity: 5 });
    const ids = Array.from({ length: 23 }, (_, i) => `b-${i}`);
    expect(ids.filter((id) => reloaded.has(id))).toEqual(['b-18', 'b-19', 'b-20', 'b-21', 'b-22']);
    expect(idLines(path)).toEqual(['b-18', 'b-19', 'b-20', 'b-21', 'b-22']);
    await reloaded.close();
  });

  it('refuses a file that is not a checkpoint instead of compacting it away', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'keyway-checkpoint-')), 'batches.jsonl');
    writeFileSync(path, '{"id":"b-1"}\n');
    await expect(fileCheckpoint(path)).rejects.toThrow(/not an importer checkpoint/);
    expect(readFileSync(path, 'utf8')).toBe('{"id":"b-1"}\n');
  });

  it('appends synchronously (O_DSYNC): record() resolves only once the id is on stable storage, after a compaction too', async () => {
    const path = statePath();
    const checkpoint = await fileCheckpoint(path, { capacity: 2 });
    const synchronous = () => openFlags(path).map((flags) => flags & (constants.O_DSYNC | constants.O_APPEND));
    expect(synchronous()).toEqual([constants.O_DSYNC | constants.O_APPEND]);
    // capacity 2: the second append rewrites the log (a new file renamed over it) and opens it again
    const before = statSync(path).ino;
    for (const id of ['b-1', 'b-2', 'b-3']) await checkpoint.record(id);
    expect(statSync(path).ino).not.toBe(before);
    expect(synchronous()).toEqual([constants.O_DSYNC | constants.O_APPEND]);
    await checkpoint.close();
  });
});
