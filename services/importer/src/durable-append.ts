import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * Opens a file for appending where every write resolves only once its data, and the size that
 * reaches it, are on stable storage (O_DSYNC): the guarantee of write + fdatasync(2) in one system
 * call and one thread-pool round trip instead of two. `read` also allows reading (a torn tail is
 * looked for before anything is appended).
 */
export const openDurableAppend = (path: string, mode: number, options: { read?: boolean } = {}): Promise<FileHandle> =>
  open(path, (options.read ? constants.O_RDWR : constants.O_WRONLY) | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC, mode);
