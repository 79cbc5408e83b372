import { open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { syncDirectory } from '@keyway/clients';

/**
 * The REPLAY_FROM value the agent last asked a replay for, and the replay's id, so a restart with the
 * same value does not replay again (a new value does).
 */
export interface ReplayMarker {
  /** the REPLAY_FROM last replayed; undefined when none was */
  replayed(): Promise<string | undefined>;
  /** resolves once it would survive a crash */
  record(from: string, replayId: string): Promise<void>;
}

const Marker = z.object({ replay_from: z.string(), replay_id: z.string(), requested_at: z.string() });

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
      const parsed = Marker.safeParse(JSON.parse(text));
      if (!parsed.success) throw new Error(`${path} is not an importer replay marker`);
      return parsed.data.replay_from;
    },
    async record(from, replayId) {
      const temporary = `${path}.tmp`;
      const file = await open(temporary, 'w', 0o600);
      try {
        await file.writeFile(`${JSON.stringify({ replay_from: from, replay_id: replayId, requested_at: new Date().toISOString() })}\n`, 'utf8');
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temporary, path);
      await syncDirectory(dirname(path));
    },
  };
}
