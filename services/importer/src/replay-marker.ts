import { open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { syncDirectory } from '@keyway/clients';
import { ConfigError } from '@keyway/kit';

/** The REPLAY_FROM value the agent last asked a replay for, the replay's id, and whether it completed. */
interface ReplayState {
  from: string;
  replayId: string;
  done: boolean;
}

/**
 * What the agent knows of its last REPLAY_FROM, so a restart with the same value neither replays
 * again once the replay completed nor forgets one that did not (a new value replays again).
 */
export interface ReplayMarker {
  /** the last replay asked for; undefined when none was. Rejects with ConfigError when the file is not a marker */
  replayed(): Promise<ReplayState | undefined>;
  /** resolves once it would survive a crash */
  record(state: ReplayState): Promise<void>;
}

const Marker = z.object({ replay_from: z.string(), replay_id: z.string(), requested_at: z.string(), done: z.boolean().default(false) });

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

/** In a file beside the checkpoint (STATE_FILE + ".replay"), replaced whole: written aside, fsync'd, renamed. */
export function fileReplayMarker(path: string): ReplayMarker {
  return {
    async replayed() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
      const parsed = Marker.safeParse(parseJson(text));
      // the operator's to fix (or delete, to replay again): said plainly, as a configuration error
      if (!parsed.success) throw new ConfigError([`${path} is not an importer replay marker: fix or delete it`]);
      return { from: parsed.data.replay_from, replayId: parsed.data.replay_id, done: parsed.data.done };
    },
    async record({ from, replayId, done }) {
      const temporary = `${path}.tmp`;
      const file = await open(temporary, 'w', 0o600);
      try {
        await file.writeFile(`${JSON.stringify({ replay_from: from, replay_id: replayId, requested_at: new Date().toISOString(), done })}\n`, 'utf8');
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temporary, path);
      await syncDirectory(dirname(path));
    },
  };
}
