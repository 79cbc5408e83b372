import { createReadStream, type ReadStream } from 'node:fs';
import { copyFile, type FileHandle, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** A byte range, both ends inclusive (RFC 9110 §14.1.2). */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Where clean files live, by their SHA-256 (the storage seam: an object store later). Only clean
 * files are put here; what is staged or quarantined lives beside it, never in it.
 */
export interface BlobStore {
  /** moves a finished file in under its hash (a rename on the same filesystem); a blob already there is kept and the file removed */
  put(sha256: string, fromPath: string): Promise<void>;
  /** the blob's bytes, or the range of them, as a stream (backpressure: read as the consumer takes them) */
  open(sha256: string, range?: ByteRange): ReadStream;
  /** the blob opened for reads at any offset (SFTP: the client asks for the pieces it wants, resumes included) */
  openRandom(sha256: string): Promise<FileHandle>;
  /** the blob's size, or undefined when it is not there */
  stat(sha256: string): Promise<{ size: number } | undefined>;
  delete(sha256: string): Promise<void>;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** `<dir>/sha256/<2 hex>/<64 hex>`: content-addressed on disk, a fan-out of 256 directories. */
export function diskBlobStore(dir: string): BlobStore {
  const pathOf = (sha256: string) => {
    // the hash is the whole path below dir: nothing else may reach the filesystem
    if (!SHA256.test(sha256)) throw new Error('not a lowercase hex SHA-256');
    return join(dir, 'sha256', sha256.slice(0, 2), sha256);
  };
  const statOf = async (path: string) => {
    try {
      return { size: (await stat(path)).size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  return {
    async put(sha256, fromPath) {
      const target = pathOf(sha256);
      await mkdir(dirname(target), { recursive: true });
      if (await statOf(target)) {
        await rm(fromPath, { force: true });
        return;
      }
      await moveFile(fromPath, target);
    },
    open: (sha256, range) => createReadStream(pathOf(sha256), range ? { start: range.start, end: range.end } : {}),
    openRandom: (sha256) => open(pathOf(sha256), 'r'),
    stat: (sha256) => statOf(pathOf(sha256)),
    delete: (sha256) => rm(pathOf(sha256), { force: true }),
  };
}

/** rename, or copy and remove across filesystems (EXDEV). */
export async function moveFile(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await copyFile(from, to);
    await rm(from, { force: true });
  }
}
