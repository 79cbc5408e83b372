import { mkdir, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, parse } from 'node:path';
import { syncDirectory } from '@keyway/clients';
import { openDurableAppend } from '../durable-append.ts';
import type { Sink } from './sink.ts';

export interface FileSinkOptions {
  /** rotate before a line would take the file past this size; default 100 MiB */
  maxBytes?: number;
  /** rotated files kept (the oldest beyond this are deleted); default 10 */
  maxFiles?: number;
}

export const DEFAULT_MAX_BYTES = 100 * 1024 * 1024;
export const DEFAULT_MAX_FILES = 10;

/** `20240102T030405.678Z`: fixed width, so rotated names sort in the order they were made. */
const STAMP = /^\d{8}T\d{6}\.\d{3}Z$/;
const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '');
const NEWLINE = Buffer.from('\n');

/**
 * JSON lines, one batch a line. write() resolves once the line is durable (a synchronous append,
 * O_DSYNC); writes are serialized so lines never interleave and the file's order is the order of
 * write() calls.
 *
 * Rotation: before a line would take `name.jsonl` past `maxBytes` it is renamed to
 * `name.<UTC timestamp>.jsonl` and a new `name.jsonl` is started; at most `maxFiles` rotated files
 * are kept. Renames, creations and deletions are made durable with an fsync of the directory, so a
 * crash never loses a rotated file or leaves the live one missing from the directory.
 */
export async function fileSink(path: string, options: FileSinkOptions = {}): Promise<Sink> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxFiles = options.maxFiles ?? DEFAULT_MAX_FILES;
  const dir = dirname(path);
  const { name, ext } = parse(path);
  const rotatedStamp = (entry: string): string | undefined => {
    if (!entry.startsWith(`${name}.`) || !entry.endsWith(ext)) return undefined;
    const middle = entry.slice(name.length + 1, entry.length - ext.length);
    return STAMP.test(middle) ? middle : undefined;
  };
  const rotatedFiles = async () => (await readdir(dir)).filter((entry) => rotatedStamp(entry) !== undefined).sort();

  await mkdir(dir, { recursive: true });
  // read and append: dropTornTail reads the end of the file before anything is appended.
  let file: FileHandle = await openDurableAppend(path, 0o640, { read: true });
  let size = await dropTornTail(file);
  await syncDirectory(dir);
  // Names must stay unique and ordered even when two rotations fall in the same millisecond.
  let lastStampMs = Math.max(0, ...(await rotatedFiles()).map((entry) => parseStamp(rotatedStamp(entry)!)));

  async function rotate(): Promise<void> {
    await file.close();
    try {
      lastStampMs = Math.max(Date.now(), lastStampMs + 1);
      await rename(path, join(dir, `${name}.${stamp(lastStampMs)}${ext}`));
    } finally {
      // Reopened even when the rename failed, so the sink keeps a handle and the next write retries.
      file = await openDurableAppend(path, 0o640);
      size = (await file.stat()).size;
    }
    const rotated = await rotatedFiles();
    for (const old of rotated.slice(0, Math.max(0, rotated.length - maxFiles))) await unlink(join(dir, old));
    // One directory fsync makes the rename, the new file and the deletions durable together.
    await syncDirectory(dir);
  }

  let queue: Promise<void> = Promise.resolve();
  return {
    description: `file ${path} (rotating at ${maxBytes} bytes, keeping ${maxFiles})`,
    write(batch, json) {
      // the received bytes are the batch's JSON.stringify (the topic service stored that), so the line is the same either way
      const line = json === undefined ? Buffer.from(`${JSON.stringify(batch)}\n`, 'utf8') : Buffer.concat([json, NEWLINE]);
      const next = queue.then(async () => {
        // A line larger than maxBytes still goes whole into a file of its own.
        if (size > 0 && size + line.length > maxBytes) await rotate();
        try {
          // opened O_DSYNC: the line is durable when the append resolves
          await file.appendFile(line);
        } catch (err) {
          // A half-written line must not be followed by the next one: cut back to the last whole line.
          await file.truncate(size).catch(() => undefined);
          throw err;
        }
        size += line.length;
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

/**
 * A process killed in the middle of an append leaves a line without its newline. That batch was
 * never acked, so it is delivered again; the fragment is cut off here so the next line does not
 * fuse with it. Returns the size that is left.
 */
async function dropTornTail(file: FileHandle): Promise<number> {
  const { size } = await file.stat();
  const chunk = Buffer.alloc(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const { bytesRead } = await file.read(chunk, 0, end - start, start);
    const newline = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (newline >= 0) {
      end = start + newline + 1;
      break;
    }
    end = start;
  }
  if (end < size) {
    await file.truncate(end);
    await file.sync();
  }
  return end;
}

const parseStamp = (value: string) => Date.parse(`${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6, 8)}T${value.slice(9, 11)}:${value.slice(11, 13)}:${value.slice(13)}`);
