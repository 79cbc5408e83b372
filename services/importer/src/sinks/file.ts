import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Sink } from './sink.ts';

/** JSON lines, one batch a line, fsync'd before write() resolves. */
export async function fileSink(path: string): Promise<Sink> {
  await mkdir(dirname(path), { recursive: true });
  const file: FileHandle = await open(path, 'a', 0o640);
  let queue: Promise<void> = Promise.resolve();
  return {
    description: `file ${path}`,
    write(batch) {
      // Writes are serialized so lines never interleave and order is the order of write() calls.
      const next = queue.then(async () => {
        await file.appendFile(JSON.stringify(batch) + '\n', 'utf8');
        await file.sync();
      });
      queue = next.catch(() => undefined);
      return next;
    },
    close: async () => {
      await queue;
      await file.close();
    },
  };
}
