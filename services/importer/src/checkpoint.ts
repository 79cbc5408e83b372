import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncDirectory } from '@keyway/clients';
import { BATCH_ID } from '@keyway/contracts';
import { openDurableAppend } from './durable-append.ts';

/**
 * The ids of the batches already in the sink, so a batch delivered again (design.md "Delivery":
 * at least once) is acked without being written twice. The agent's order per batch is:
 * sink.write (durable) → record(id) (durable) → complete. A crash between the first two is the only
 * way a batch reaches the sink twice.
 */
export interface Checkpoint {
  has(id: string): boolean;
  /** resolves once the id would survive a crash */
  record(id: string): Promise<void>;
  /** forgets every id (durably), so the batches are written again when they come back: a replay */
  clear(): Promise<void>;
  close(): Promise<void>;
}

const DEFAULT_CAPACITY = 10_000;

/**
 * The last `capacity` ids, oldest first. Redeliveries come back within a lock duration or after a
 * restart, so a window of recent ids is enough; older ones are forgotten in the order they came.
 */
class RecentIds {
  private readonly ids = new Set<string>();
  constructor(private readonly capacity: number) {}

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string): void {
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
  }

  values(): string[] {
    return [...this.ids];
  }

  clear(): void {
    this.ids.clear();
  }
}

/** For an agent without a state file (tests, the dev launcher): duplicates are dropped until it stops. */
export function memoryCheckpoint(capacity = DEFAULT_CAPACITY): Checkpoint {
  const recent = new RecentIds(capacity);
  return {
    has: (id) => recent.has(id),
    record: async (id) => recent.add(id),
    clear: async () => recent.clear(),
    close: async () => undefined,
  };
}

/** First line of every state file, so a mistyped STATE_FILE is refused rather than compacted away. */
const HEADER = 'keyway-importer-checkpoint v1';

/**
 * The checkpoint in a state file: an append-only log of ids, one a line, each durable (a
 * synchronous append, O_DSYNC) before record() resolves. When it holds twice `capacity` ids it is
 * compacted to the last `capacity`: written to a temporary file, fsync'd, renamed over the log, and
 * the directory fsync'd, so a SIGKILL at any moment leaves either the old log or the new one, never
 * a mix. A kill in the middle of an append leaves a last line without its newline: load ignores it
 * (that batch was never recorded, so it may be written once more) and rewrites the log without it.
 *
 * The file holds batch ids only. No token is stored: after a restart the agent logs in again with
 * its credentials, so there is nothing secret here to encrypt.
 */
export async function fileCheckpoint(path: string, options: { capacity?: number } = {}): Promise<Checkpoint> {
  const capacity = options.capacity ?? DEFAULT_CAPACITY;
  const recent = new RecentIds(capacity);
  for (const id of await load(path)) recent.add(id);
  await compact(path, recent.values());
  let log: FileHandle = await openDurableAppend(path, 0o600);
  let appended = 0;
  // After a failed append the log may end in a fragment the next id would fuse with.
  let damaged = false;
  const rewrite = async () => {
    await log.close().catch(() => undefined);
    await compact(path, recent.values());
    log = await openDurableAppend(path, 0o600);
    appended = 0;
    damaged = false;
  };

  let queue: Promise<void> = Promise.resolve();
  const serialized = (task: () => Promise<void>) => {
    const next = queue.then(task);
    queue = next.catch(() => undefined);
    return next;
  };
  // Group commit: ids recorded while an append is under way go together in the next one, one
  // synchronous write for all of them (a pipelined agent records while the next batch is written).
  let waiting: string[] = [];
  let flush: Promise<void> | undefined;
  const append = async () => {
    const ids = waiting;
    waiting = [];
    flush = undefined;
    // A rewrite from memory already holds these ids.
    if (damaged) return rewrite();
    try {
      // opened O_DSYNC: the append is durable when it resolves
      await log.appendFile(`${ids.join('\n')}\n`, 'utf8');
    } catch (err) {
      damaged = true;
      throw err;
    }
    appended += ids.length;
    if (appended >= capacity) await rewrite();
  };

  return {
    has: (id) => recent.has(id),
    record(id) {
      if (!BATCH_ID.test(id)) return Promise.reject(new Error(`not a batch id: ${JSON.stringify(id)}`));
      recent.add(id);
      waiting.push(id);
      flush ??= serialized(append);
      return flush;
    },
    clear: () =>
      serialized(async () => {
        recent.clear();
        await rewrite();
      }),
    close: () => serialized(() => log.close()),
  };
}

/** The ids in the log, oldest first; lines not ended by a newline (torn) or not an id are skipped. */
async function load(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const lines = text.split('\n');
  if (lines[0] !== HEADER) throw new Error(`${path} is not an importer checkpoint (its first line is not "${HEADER}")`);
  // The last element is what follows the last newline: '' when the log is whole, a torn id otherwise.
  return lines.slice(1, -1).filter((line) => BATCH_ID.test(line));
}

async function compact(path: string, ids: string[]): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temporary = `${path}.tmp`;
  const file = await open(temporary, 'w', 0o600);
  try {
    await file.writeFile([HEADER, ...ids, ''].join('\n'), 'utf8');
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  await syncDirectory(dir);
}
