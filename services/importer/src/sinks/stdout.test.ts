import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Batch } from '@keyway/contracts';
import { stdoutSink } from './stdout.ts';
import { testBatch as batch } from './test-fixtures.ts';

/** A stand-in for stdout whose writes complete only when the test says so, like a slow pipe reader. */
function slowPipe() {
  const lines: string[] = [];
  const pending: Array<(err?: Error) => void> = [];
  const stream = new Writable({
    highWaterMark: 16,
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      pending.push(callback);
    },
  });
  return { stream, lines, pending };
}

describe('stdout sink', () => {
  it('writes one JSON line per batch and resolves only once the stream has taken it', async () => {
    const pipe = slowPipe();
    const sink = stdoutSink(pipe.stream);
    let firstDone = false;
    const first = sink.write(batch(0)).then(() => (firstDone = true));
    const second = sink.write(batch(1));
    await new Promise((r) => setTimeout(r, 20));
    // One line in flight: the second waits for the first's callback.
    expect(pipe.lines).toHaveLength(1);
    expect(firstDone).toBe(false);

    pipe.pending.shift()!();
    await first;
    await new Promise((r) => setTimeout(r, 20));
    expect(pipe.lines).toHaveLength(2);
    pipe.pending.shift()!();
    await second;
    await sink.close();
    expect(pipe.lines.map((l) => JSON.parse(l) as Batch)).toEqual([batch(0), batch(1)]);
    expect(pipe.lines.every((l) => l.endsWith('}\n'))).toBe(true);
  });

  it('rejects the write in flight and every later one when the reader has gone (EPIPE)', async () => {
    const pipe = slowPipe();
    const sink = stdoutSink(pipe.stream);
    const first = sink.write(batch(0));
    await new Promise((r) => setTimeout(r, 10));
    pipe.pending.shift()!(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    await expect(first).rejects.toMatchObject({ code: 'EPIPE' });
    await expect(sink.write(batch(1))).rejects.toMatchObject({ code: 'EPIPE' });
  });
});
