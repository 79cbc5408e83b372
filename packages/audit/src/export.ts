import type { Queryable } from '@keyway/db';
import { AuditIntegrityError } from './errors.ts';
import type { AuditEvent } from './event.ts';
import { parseEvent, readAnchor, readHead, readRows } from './layout.ts';

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
export async function readSince(db: Queryable, stream: string, afterSeq: number, limit = 100): Promise<FeedPage> {
  const anchor = await readAnchor(db, stream);
  const head = await readHead(db, stream);
  const start = Math.max(afterSeq, anchor.seq);
  const rows = await readRows(db, stream, start + 1, Math.min(head.seq, start + limit));
  const events: AuditEvent[] = [];
  for (let seq = start + 1; seq <= Math.min(head.seq, start + limit); seq++) {
    const row = rows[seq - start - 1];
    const missing = row === undefined || Number(row.seq) !== seq;
    if (missing && (await readAnchor(db, stream)).seq >= seq) break; // trimmed meanwhile; the next call reports it as missed
    const event = missing ? null : parseEvent(row.event);
    if (!event || event.seq !== seq) throw new AuditIntegrityError(`audit stream "${stream}": event ${seq} is ${missing ? 'missing' : 'malformed'}`);
    events.push(event);
  }
  return { events, missed: Math.max(0, anchor.seq - afterSeq), headSeq: head.seq };
}
