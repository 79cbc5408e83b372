import type { AuditBreak } from '@keyway/contracts';
import type { Queryable } from '@keyway/db';
import type { CheckpointSigner } from './checkpoint.ts';
import { readAnchor, readHead, readRows } from './layout.ts';
import { signTrim } from './trim.ts';
import { checkEvent } from './verify.ts';

const READ_CHUNK = 100;

/** How long the database keeps events (keyway_audit.retention, set by its administrator), in ms. */
export async function readRetention(db: Queryable): Promise<number> {
  const [row] = await db.query<{ ms: string | number }>('SELECT (extract(epoch FROM keep) * 1000)::bigint AS ms FROM keyway_audit.retention');
  if (row === undefined) throw new Error('keyway_audit.retention holds no retention');
  return Number(row.ms);
}

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
 * Trims the oldest events of a stream beyond the policy, at most `batch` per call; the audit service
 * runs it for every stream with the database's retention (readRetention), below which the retention
 * function refuses to delete anyway. Only a verified prefix is trimmed: each doomed event is checked (hash and
 * link) first, and trimming stops before the first broken one, so retention never erases the evidence
 * of tampering. The deletion runs in keyway_audit.trim_stream (0003_audit.sql), as the retention role:
 * the caller's role holds no DELETE, and the function moves the anchor to the last deleted event's
 * {seq, hash} in the same statement, so the oldest kept event still links to it. The trim is signed
 * with the checkpoint key (trim.ts) and recorded by the same function: verify trusts no anchor without it.
 */
export async function trimStream(db: Queryable, signer: CheckpointSigner, stream: string, policy: RetentionPolicy, options: { now?: number; batch?: number } = {}): Promise<TrimResult> {
  const now = options.now ?? Date.now();
  const batch = options.batch ?? 500;
  const anchor = await readAnchor(db, stream);
  const head = await readHead(db, stream);
  const overCount = policy.maxEvents === undefined ? 0 : Math.max(0, head.seq - anchor.seq - policy.maxEvents);
  const cutoff = policy.maxAgeMs === undefined ? undefined : now - policy.maxAgeMs;
  // with a count limit only, exactly the excess is a candidate; an age limit needs a look at each event
  const candidates = Math.min(head.seq - anchor.seq, cutoff === undefined ? Math.min(batch, overCount) : batch);

  let prevHash = anchor.hash;
  let upto = anchor.seq;
  let eventTime = '';
  let blockedAt: TrimResult['blockedAt'];
  // read in small chunks: an age-limited stream usually stops at its first (still young) event
  scan: for (let offset = 1; offset <= candidates; offset += READ_CHUNK) {
    const from = anchor.seq + offset;
    const to = Math.min(anchor.seq + candidates, from + READ_CHUNK - 1);
    const rows = await readRows(db, stream, from, to);
    for (let seq = from; seq <= to; seq++) {
      const result = checkEvent(seq, rows[seq - from], prevHash);
      if (!result.ok) {
        blockedAt = { seq, reason: result.reason };
        break scan;
      }
      const { event } = result;
      const overLimit = seq - anchor.seq <= overCount;
      if (!overLimit && !(cutoff !== undefined && Date.parse(event.time) < cutoff)) break scan;
      prevHash = event.hash;
      eventTime = event.time;
      upto = seq;
    }
  }
  if (upto === anchor.seq) return { trimmed: 0, anchorSeq: anchor.seq, ...(blockedAt && { blockedAt }) };
  const trim = signTrim(signer, { stream, seq: upto, hash: prevHash, eventTime: new Date(eventTime).toISOString(), trimmedAt: new Date(now).toISOString() });
  const [row] = await db.query<{ trimmed: string | number }>('SELECT keyway_audit.trim_stream($1, $2, $3, $4, $5, $6, $7) AS trimmed', [
    stream,
    upto,
    trim.hash,
    trim.eventTime,
    trim.trimmedAt,
    trim.keyId,
    trim.signature,
  ]);
  return { trimmed: Number(row?.trimmed ?? 0), anchorSeq: upto, ...(blockedAt && { blockedAt }) };
}
