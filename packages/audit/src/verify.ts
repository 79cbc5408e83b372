import type { AuditBreak, AuditVerifyResult } from '@keyway/contracts';
import type { Store } from '@keyway/store';
import { eventHash } from './chain.ts';
import type { AuditEvent } from './event.ts';
import { layout, parseEvent, readLink, readRaw } from './layout.ts';

export type LinkCheck = { ok: true; event: AuditEvent } | { ok: false; brokenAt: { seq: number; id: string | null }; reason: AuditBreak };

/** Whether the stored bytes at `seq` are an intact event that links to `prevHash`. */
export function checkEvent(seq: number, raw: string | null, prevHash: string): LinkCheck {
  if (raw === null) return { ok: false, brokenAt: { seq, id: null }, reason: 'missing' };
  const event = parseEvent(raw);
  if (!event) return { ok: false, brokenAt: { seq, id: null }, reason: 'malformed' };
  const brokenAt = { seq, id: event.id };
  if (event.seq !== seq) return { ok: false, brokenAt, reason: 'seq_mismatch' };
  const { hash, ...unsigned } = event;
  // content first: an edited event is reported as itself, not as the next event's broken link
  if (eventHash(unsigned) !== hash) return { ok: false, brokenAt, reason: 'hash_mismatch' };
  if (event.prevHash !== prevHash) return { ok: false, brokenAt, reason: 'prev_hash_mismatch' };
  return { ok: true, event };
}

/**
 * `keyway audit verify`: recomputes every hash from the retention anchor (or the genesis) up to the head
 * as read at the start, and checks each event links to the one before; reports the first broken link.
 * An event trimmed by retention while this runs is not a break: the anchor has moved past it, so the walk
 * continues from the new anchor. What a chain stored next to its head cannot show is a rewrite of the
 * head together with the newest events; the exported feed (readSince) is the outside witness for that.
 */
export async function verifyChain(store: Store, stream: string, options: { chunk?: number } = {}): Promise<AuditVerifyResult> {
  const chunk = options.chunk ?? 500;
  const { link: head } = await readLink(store, layout.head(stream));
  let { link: anchor } = await readLink(store, layout.anchor(stream));
  const anchorSeq = anchor.seq;
  let prevHash = anchor.hash;
  let checked = 0;
  let lastId: string | null = null;
  let seq = anchor.seq + 1;
  while (seq <= head.seq) {
    const raws = await readRaw(store, stream, seq, Math.min(head.seq, seq + chunk - 1));
    for (const raw of raws) {
      if (raw === null) {
        const moved = (await readLink(store, layout.anchor(stream))).link;
        // trimmed (and verified by the trimmer) since the walk started: continue after the new anchor
        if (moved.seq >= head.seq) return { ok: true, stream, checked, anchorSeq, headSeq: head.seq };
        if (moved.seq >= seq) {
          anchor = moved;
          break;
        }
      }
      const result = checkEvent(seq, raw, prevHash);
      if (!result.ok) return { ok: false, stream, brokenAt: result.brokenAt, reason: result.reason };
      prevHash = result.event.hash;
      lastId = result.event.id;
      checked++;
      seq++;
    }
    if (anchor.seq >= seq) {
      seq = anchor.seq + 1;
      prevHash = anchor.hash;
    }
  }
  if (prevHash !== head.hash) return { ok: false, stream, brokenAt: { seq: head.seq, id: lastId }, reason: 'head_mismatch' };
  // an event beyond the head means the head was rolled back or deleted, unless an append just moved it
  if ((await store.get(layout.event(stream, head.seq + 1))) !== null && (await readLink(store, layout.head(stream))).link.seq <= head.seq) {
    return { ok: false, stream, brokenAt: { seq: head.seq + 1, id: null }, reason: 'head_mismatch' };
  }
  return { ok: true, stream, checked, anchorSeq, headSeq: head.seq };
}
