import { open } from 'node:fs/promises';

/** Makes a new or renamed directory entry durable: the name survives a power loss only once its directory is on disk. */
export async function syncDirectory(path: string): Promise<void> {
  const directory = await open(path, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
