import type { Store } from '@keyway/store';
import { AuditIntegrityError } from './errors.ts';
import type { AuditEvent } from './event.ts';
import { layout, parseEvent, readLink, readRaw } from './layout.ts';

export interface FeedPage {
  /** in seq order; each carries prevHash and hash, so the receiving SIEM can verify the chain itself */
  events: AuditEvent[];
  /** events after `afterSeq` that retention trimmed before they were read (0 unless the forwarder fell behind) */
  missed: number;
  headSeq: number;
}

/**
 * The trail as a feed of its own (design.md, "Audit": exportable to a SIEM): the events of a stream
 * after `afterSeq`, oldest first, at most `limit`. A forwarder keeps the last seq it published and
 * asks again from there. A hole below the head that retention did not make is an integrity failure
 * and throws, so a forwarder stops at it instead of publishing a chain with a gap.
 */
export async function readSince(store: Store, stream: string, afterSeq: number, limit = 100): Promise<FeedPage> {
  const { link: head } = await readLink(store, layout.head(stream));
  const { link: anchor } = await readLink(store, layout.anchor(stream));
  const start = Math.max(afterSeq, anchor.seq);
  const raws = await readRaw(store, stream, start + 1, Math.min(head.seq, start + limit));
  const events: AuditEvent[] = [];
  for (const [i, raw] of raws.entries()) {
    const seq = start + 1 + i;
    if (raw === null && (await readLink(store, layout.anchor(stream))).link.seq >= seq) break; // trimmed meanwhile; the next call reports it as missed
    const event = raw === null ? null : parseEvent(raw);
    if (!event || event.seq !== seq) throw new AuditIntegrityError(`audit stream "${stream}": event ${seq} is ${raw === null ? 'missing' : 'malformed'}`);
    events.push(event);
  }
  return { events, missed: Math.max(0, anchor.seq - afterSeq), headSeq: head.seq };
}
