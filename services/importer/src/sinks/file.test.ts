import { constants, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assert, describe, expect, it } from 'vitest';
import { Batch } from '@keyway/contracts';
import { fileSink } from './file.ts';
import { openFlags, testBatch } from './test-fixtures.ts';

const batch = (seq: number) => testBatch(seq, { records: [{ event: 'login', user: `user-${seq}`, padding: 'x'.repeat(200) }] });

/** Every line in the directory, oldest file first: rotated files sort by their timestamp, the live one is last. */
function allLines(dir: string) {
  const rotated = readdirSync(dir)
    .filter((f) => /^batches\.\d{8}T\d{6}\.\d{3}Z\.jsonl$/.test(f))
    .sort();
  const lines = [...rotated, 'batches.jsonl'].flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean));
  return { rotated, seqs: lines.map((l) => (JSON.parse(l) as Batch).seq) };
}

describe('file sink (rotating JSON lines)', () => {
  it('keeps every line, in order, across rotations, and no file grows past maxBytes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-file-sink-'));
    const sink = await fileSink(join(dir, 'batches.jsonl'), { maxBytes: 2_000, maxFiles: 100 });
    // Concurrent write() calls still land whole and in call order.
    await Promise.all(Array.from({ length: 40 }, (_, seq) => sink.write(batch(seq))));
    await sink.close();

    const { rotated, seqs } = allLines(dir);
    expect(seqs).toEqual(Array.from({ length: 40 }, (_, seq) => seq));
    expect(rotated.length).toBeGreaterThan(3);
    for (const f of [...rotated, 'batches.jsonl']) expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(2_000);
  });

  it('keeps at most maxFiles rotated files, deleting the oldest, and goes on rotating after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-file-sink-'));
    const path = join(dir, 'batches.jsonl');
    /** Writes seqs from..to-1 through a newly opened sink (the second time: after a restart), then checks what is left. */
    const writeThrough = async (from: number, to: number) => {
      const sink = await fileSink(path, { maxBytes: 1_000, maxFiles: 3 });
      for (let seq = from; seq < to; seq += 1) await sink.write(batch(seq));
      await sink.close();
      const left = allLines(dir);
      expect(left.rotated).toHaveLength(3);
      // What is left is the newest lines, with no gap up to the last one written.
      expect(left.seqs.at(-1)).toBe(to - 1);
      expect(left.seqs).toEqual(Array.from({ length: left.seqs.length }, (_, i) => to - left.seqs.length + i));
    };
    await writeThrough(0, 20);
    await writeThrough(20, 30);
  });

  it('cuts off the torn last line a killed process left, so the next line stands on its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-file-sink-'));
    const path = join(dir, 'batches.jsonl');
    const whole = `${JSON.stringify(batch(0))}\n${JSON.stringify(batch(1))}\n`;
    writeFileSync(path, whole + JSON.stringify(batch(2)).slice(0, 50));

    const sink = await fileSink(path);
    await sink.write(batch(2));
    await sink.close();
    const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
    expect(lines.map((l) => (JSON.parse(l) as Batch).seq)).toEqual([0, 1, 2]);
  });

  it('writes a batch received as JSON bytes as those bytes: the same line as serialising the parsed batch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-file-sink-'));
    const records = [{ user: 'ünïcødé "q" \\ \u2028', n: 1.5e-7, nested: { a: [null, true, -0] } }];
    // as the topic service stores a batch (its JSON after the schema) and the stream client validates it
    const stored = Buffer.from(JSON.stringify(Batch.parse(testBatch(3, { records }))));
    const received = Batch.parse(JSON.parse(stored.toString('utf8')));
    const viaBytes = await fileSink(join(dir, 'bytes.jsonl'));
    const viaBatch = await fileSink(join(dir, 'batch.jsonl'));
    await viaBytes.write(received, stored);
    await viaBatch.write(received);
    await Promise.all([viaBytes.close(), viaBatch.close()]);
    const written = readFileSync(join(dir, 'bytes.jsonl'));
    expect(written.equals(readFileSync(join(dir, 'batch.jsonl')))).toBe(true);
    expect(written.equals(Buffer.concat([stored, Buffer.from('\n')]))).toBe(true);
    // and the batch is not serialised again (its JSON is given)
    const unserialisable = { ...received, records: [{ toJSON: () => assert.fail('serialised again') }] };
    const again = await fileSink(join(dir, 'again.jsonl'));
    await again.write(unserialisable, stored);
    await again.close();
    expect(readFileSync(join(dir, 'again.jsonl')).equals(written)).toBe(true);
  });

  it('appends synchronously (O_DSYNC): a write resolves only once its line is on stable storage, after a rotation too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-file-sink-'));
    const path = join(dir, 'batches.jsonl');
    const sink = await fileSink(path, { maxBytes: 400 });
    const synchronous = () => openFlags(path).map((flags) => flags & (constants.O_DSYNC | constants.O_APPEND));
    expect(synchronous()).toEqual([constants.O_DSYNC | constants.O_APPEND]);
    for (let seq = 0; seq < 3; seq += 1) await sink.write(batch(seq));
    expect(allLines(dir).rotated.length).toBeGreaterThan(0);
    expect(synchronous()).toEqual([constants.O_DSYNC | constants.O_APPEND]);
    await sink.close();
  });
});
