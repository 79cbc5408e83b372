import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import type { Batch } from '@keyway/contracts';

/** A batch as the topic service hands it to a sink (fixture of the sink tests next to this file). */
export const testBatch = (seq: number, fields: Partial<Batch> = {}): Batch => ({
  id: `b-${seq}`,
  tenant: 'acme',
  topic: 'edr-events',
  seq,
  createdAt: '2024-05-06T07:08:09.123Z',
  contentType: 'application/json',
  records: [{ event: 'login' }],
  ...fields,
});

/**
 * The open flags of this process's descriptors for `path` (Linux /proc/self/fdinfo), to check how a
 * sink or the checkpoint keeps its file open.
 */
export function openFlags(path: string): number[] {
  const target = realpathSync(path);
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    let link: string;
    try {
      link = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return []; // closed meanwhile (the descriptor of readdir itself)
    }
    if (link !== target) return [];
    const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
    return flags === undefined ? [] : [Number.parseInt(flags, 8)];
  });
}
