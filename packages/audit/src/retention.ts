import type { AuditBreak } from '@keyway/contracts';
import type { Store, StoreWrite } from '@keyway/store';
import { indexKeys, indexMember, layout, readLink, readRaw, serializeLink } from './layout.ts';
import { checkEvent } from './verify.ts';

const READ_CHUNK = 100;

/** How much of a stream to keep; an event goes once it is beyond either limit. */
export interface RetentionPolicy {
  /** keep at most this many of the newest events */
  maxEvents?: number;
  /** drop events older than this */
  maxAgeMs?: number;
}

export interface TrimResult {
  trimmed: number;
  /** seq of the newest trimmed event: verification starts after it */
  anchorSeq: number;
  /** where trimming stopped because the chain is broken there (evidence is never trimmed away) */
  blockedAt?: { seq: number; reason: AuditBreak };
}

/**
 * Trims the oldest events of a stream beyond the policy, at most `batch` per call. Only a verified
 * prefix is trimmed: each doomed event is checked (hash and link) first, and trimming stops before the
 * first broken one, so retention can never erase the evidence of tampering. The new anchor holds the
 * last trimmed event's {seq, hash}; the oldest retained event's prevHash must equal it, so the chain
 * stays verifiable from there. The event deletions, their index entries and the anchor move in one
 * `commitIf` guarded by the old anchor, so two trimmers cannot interleave; appends are unaffected
 * (they only guard the head).
 */
export async function trimStream(store: Store, stream: string, policy: RetentionPolicy, options: { now?: number; batch?: number } = {}): Promise<TrimResult> {
  const now = options.now ?? Date.now();
  const batch = options.batch ?? 500;
  const anchorKey = layout.anchor(stream);
  const { link: head } = await readLink(store, layout.head(stream));
  const anchor = await readLink(store, anchorKey);
  const overCount = policy.maxEvents === undefined ? 0 : Math.max(0, head.seq - anchor.link.seq - policy.maxEvents);
  const cutoff = policy.maxAgeMs === undefined ? undefined : now - policy.maxAgeMs;
  // with a count limit only, exactly the excess is a candidate; an age limit needs a look at each event
  const candidates = Math.min(head.seq - anchor.link.seq, cutoff === undefined ? Math.min(batch, overCount) : batch);

  const writes: StoreWrite[] = [];
  const unindex = new Map<string, string[]>();
  let prevHash = anchor.link.hash;
  let newAnchor = anchor.link;
  let blockedAt: TrimResult['blockedAt'];
  // read in small chunks: an age-limited stream usually stops at its first (still young) event
  scan: for (let offset = 1; offset <= candidates; offset += READ_CHUNK) {
    const from = anchor.link.seq + offset;
    const raws = await readRaw(store, stream, from, Math.min(anchor.link.seq + candidates, from + READ_CHUNK - 1));
    for (const [i, raw] of raws.entries()) {
      const seq = from + i;
      const overLimit = seq - anchor.link.seq <= overCount;
      const result = checkEvent(seq, raw, prevHash);
      if (!result.ok) {
        blockedAt = { seq, reason: result.reason };
        break scan;
      }
      const { event } = result;
      if (!overLimit && !(cutoff !== undefined && Date.parse(event.time) < cutoff)) break scan;
      writes.push({ op: 'del', key: layout.event(stream, seq) });
      for (const key of indexKeys(stream, event)) {
        const members = unindex.get(key) ?? [];
        members.push(indexMember(stream, event));
        unindex.set(key, members);
      }
      prevHash = event.hash;
      newAnchor = { seq, hash: event.hash };
    }
  }
  const trimmed = newAnchor.seq - anchor.link.seq;
  if (trimmed === 0) return { trimmed, anchorSeq: anchor.link.seq, ...(blockedAt && { blockedAt }) };

  for (const [key, members] of unindex) writes.push({ op: 'zrem', key, members });
  writes.push({ op: 'set', key: anchorKey, value: serializeLink(newAnchor) });
  // a concurrent trimmer that moved the anchor first has done this work; nothing is lost by yielding to it
  if (!(await store.commitIf({ key: anchorKey, expected: anchor.raw }, writes))) return { trimmed: 0, anchorSeq: anchor.link.seq };
  return { trimmed, anchorSeq: newAnchor.seq, ...(blockedAt && { blockedAt }) };
}
