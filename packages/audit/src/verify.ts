import type { KeyObject } from 'node:crypto';
import type { AuditBreak, AuditVerifyReport, AuditVerifyResult } from '@keyway/contracts';
import type { Queryable } from '@keyway/db';
import { eventHash } from './chain.ts';
import { checkpointSigned, readCheckpoints, type Checkpoint } from './checkpoint.ts';
import type { AuditEvent } from './event.ts';
import { columnsAgree, listStreams, parseEvent, readAnchor, readHead, readRows, type ChainLink, type EventRow } from './layout.ts';
import { readTrims, trimSigned } from './trim.ts';

type Broken = Extract<AuditVerifyResult, { ok: false }>;
export type LinkCheck = { ok: true; event: AuditEvent } | { ok: false; brokenAt: { seq: number; id: string | null }; reason: AuditBreak };

/** Whether the row at `seq` holds an intact event that links to `prevHash`. */
export function checkEvent(seq: number, row: EventRow | undefined, prevHash: string): LinkCheck {
  if (row === undefined || Number(row.seq) !== seq) return { ok: false, brokenAt: { seq, id: null }, reason: 'missing' };
  const event = parseEvent(row.event);
  if (!event) return { ok: false, brokenAt: { seq, id: row.id }, reason: 'malformed' };
  const brokenAt = { seq, id: event.id };
  if (event.seq !== seq) return { ok: false, brokenAt, reason: 'seq_mismatch' };
  const { hash, ...unsigned } = event;
  // content first: an edited event is reported as itself, not as the next event's broken link
  if (eventHash(unsigned) !== hash) return { ok: false, brokenAt, reason: 'hash_mismatch' };
  if (event.prevHash !== prevHash) return { ok: false, brokenAt, reason: 'prev_hash_mismatch' };
  if (!columnsAgree(row, event)) return { ok: false, brokenAt, reason: 'column_mismatch' };
  return { ok: true, event };
}

const broken = (stream: string, seq: number, id: string | null, reason: AuditBreak, detail: string): Broken => ({ ok: false, stream, brokenAt: { seq, id }, reason, detail });

export interface VerifyOptions {
  /** the audit service's checkpoint public key (AUDIT_CHECKPOINT_PUBLIC_KEY_FILE): held by the verifier, not read from the database */
  publicKey: KeyObject;
  /** events read per query; default 1000 */
  chunk?: number;
  /** the retention the verifier expects: a signed trim of an event younger than this is `early_trim`; default 0 (not checked) */
  minRetentionMs?: number;
}

const DAY_MS = 86_400_000;

/** `--min-retention-days` / `min_retention_days` as VerifyOptions.minRetentionMs */
export const retentionMs = (days: number | undefined): number => (days ?? 0) * DAY_MS;
const span = (ms: number): string => (Math.abs(ms) >= DAY_MS ? `${Number((ms / DAY_MS).toFixed(2))} days` : `${ms / 1000} s`);

/**
 * `keyway audit verify` for one stream. Checks, and answers the first failure (lowest seq):
 * - each checkpoint's Ed25519 signature (`bad_signature`): a forged or edited checkpoint;
 * - that the retention anchor comes with a trim signed for exactly its (seq, hash) (`unsigned_anchor`:
 *   events were deleted and the anchor forged); with `minRetentionMs`, that no signed trim removed an
 *   event younger than that (`early_trim`: retention was shortened to erase recent history);
 * - each event from the retention anchor (or the genesis) to the head: its hash over its content
 *   (`hash_mismatch`), its link to the one before (`prev_hash_mismatch`), no gap (`missing`), its
 *   index columns (`column_mismatch`);
 * - that the chain still holds every signed checkpoint's (seq, hash) (`checkpoint_mismatch`: history
 *   was rewritten, hashes recomputed; somewhere after the previous checkpoint, at or before this seq);
 * - that the head is not below the newest checkpoint (`truncated`: the newest events were deleted);
 * - that the chain did not begin again after a checkpoint (`restarted`: everything was deleted and the
 *   stream started over from seq 1).
 * An event trimmed by retention while this runs is not a break: the walk continues from the new anchor.
 */
export async function verifyChain(db: Queryable, stream: string, options: VerifyOptions): Promise<AuditVerifyResult> {
  const chunk = options.chunk ?? 1000;
  const checkpoints = await readCheckpoints(db, stream);
  const forged = checkpoints.find((c) => !checkpointSigned(c, options.publicKey));
  const signed = checkpoints.filter((c) => c !== forged && checkpointSigned(c, options.publicKey));
  const found = await walk(db, stream, signed, chunk, options);
  if (forged && (found.ok || forged.seq <= found.brokenAt.seq)) {
    return broken(stream, forged.seq, null, 'bad_signature', `the checkpoint of seq ${forged.seq} (signed ${forged.time}, key ${forged.keyId}) does not verify with the checkpoint public key`);
  }
  return found;
}

/**
 * Whether `anchor` was set by a signed trim; else the break names the first event removed without one
 * (the one after the newest signed trim below the anchor). Read the anchor before the trims: the trim
 * is recorded in the statement that moves the anchor.
 */
async function unsignedAnchor(db: Queryable, stream: string, anchor: ChainLink, options: VerifyOptions): Promise<Broken | undefined> {
  if (anchor.seq === 0) return undefined;
  const trims = await readTrims(db, stream);
  const signed = trims.filter((t) => trimSigned(t, options.publicKey));
  const minRetentionMs = options.minRetentionMs ?? 0;
  // trims are few (one per keeper round that cut something) and carry their anchor event's time: no event is read
  const early = minRetentionMs > 0 ? signed.find((t) => Date.parse(t.trimmedAt) < Date.parse(t.eventTime) + minRetentionMs) : undefined;
  let found: Broken | undefined;
  if (!signed.some((t) => t.seq === anchor.seq && t.hash === anchor.hash)) {
    const from = (signed.filter((t) => t.seq < anchor.seq).at(-1)?.seq ?? 0) + 1;
    const altered = trims.some((t) => t.seq === anchor.seq && !signed.includes(t)) ? ' (the trim stored for it does not verify with the checkpoint public key)' : '';
    found = broken(
      stream,
      from,
      null,
      'unsigned_anchor',
      `events ${from}..${anchor.seq} were removed without a signed trim: no trim signed with the checkpoint key names the retention anchor at seq ${anchor.seq}${altered}`,
    );
  }
  if (early && (!found || early.seq < found.brokenAt.seq)) {
    const kept = Date.parse(early.trimmedAt) - Date.parse(early.eventTime);
    return broken(
      stream,
      early.seq,
      null,
      'early_trim',
      `event ${early.seq} (written ${early.eventTime}) was trimmed ${early.trimmedAt}, after ${span(kept)}: less than the ${span(minRetentionMs)} of retention expected`,
    );
  }
  return found;
}

async function walk(db: Queryable, stream: string, checkpoints: Checkpoint[], chunk: number, options: VerifyOptions): Promise<AuditVerifyResult> {
  const head = await readHead(db, stream);
  let anchor: ChainLink = await readAnchor(db, stream);
  const unsigned = await unsignedAnchor(db, stream, anchor, options);
  if (unsigned) return unsigned;
  const anchorSeq = anchor.seq;
  const bySeq = new Map(checkpoints.map((c) => [c.seq, c]));
  const newest = checkpoints.at(-1);
  let first: AuditEvent | undefined;

  /** a chain that no longer holds signed history: restarted when what is there now began after the checkpoint */
  const replaced = (c: Checkpoint, fallback: Broken): Broken =>
    anchor.seq === 0 && first && first.seq === 1 && first.time > c.time
      ? broken(stream, 1, first.id, 'restarted', `the stream starts over at seq 1 (${first.time}) after the checkpoint of seq ${c.seq} signed ${c.time}: its earlier history was deleted`)
      : fallback;

  const anchored = bySeq.get(anchor.seq);
  if (anchored && anchored.hash !== anchor.hash) {
    return broken(stream, anchor.seq, null, 'checkpoint_mismatch', `the retention anchor at seq ${anchor.seq} differs from its checkpoint signed ${anchored.time}`);
  }
  let prevHash = anchor.hash;
  let checked = 0;
  let seq = anchor.seq + 1;
  while (seq <= head.seq) {
    const rows = await readRows(db, stream, seq, Math.min(head.seq, seq + chunk - 1));
    if (Number(rows[0]?.seq ?? 0) !== seq) {
      const moved = await readAnchor(db, stream);
      // trimmed (and verified by the trimmer) since the walk started: continue after the new anchor
      if (moved.seq >= seq) {
        const unsignedMove = await unsignedAnchor(db, stream, moved, options);
        if (unsignedMove) return unsignedMove;
        anchor = moved;
        seq = moved.seq + 1;
        prevHash = moved.hash;
        continue;
      }
    }
    for (const row of rows) {
      const result = checkEvent(seq, row, prevHash);
      if (!result.ok) return broken(stream, result.brokenAt.seq, result.brokenAt.id, result.reason, why(result.reason, seq));
      const { event } = result;
      first ??= event;
      const c = bySeq.get(seq);
      if (c && c.hash !== event.hash) {
        const since = checkpoints.filter((k) => k.seq < seq).at(-1)?.seq ?? anchorSeq;
        return replaced(c, broken(stream, seq, event.id, 'checkpoint_mismatch', `event ${seq} differs from the checkpoint signed ${c.time}: history was rewritten within seq ${since + 1}..${seq}`));
      }
      prevHash = event.hash;
      checked++;
      seq++;
    }
    // fewer rows than asked for: the next loop reports the gap
    if (rows.length === 0) return broken(stream, seq, null, 'missing', why('missing', seq));
  }
  if (newest && newest.seq > head.seq) {
    return replaced(
      newest,
      broken(stream, head.seq + 1, null, 'truncated', `the head is seq ${head.seq} but seq ${newest.seq} was signed ${newest.time}: events ${head.seq + 1}..${newest.seq} were deleted`),
    );
  }
  return { ok: true, stream, checked, anchorSeq, headSeq: head.seq, signedSeq: newest?.seq ?? 0 };
}

function why(reason: AuditBreak, seq: number): string {
  switch (reason) {
    case 'missing':
      return `event ${seq} is not in the database, but later events are`;
    case 'malformed':
      return `event ${seq} is not a well-formed event`;
    case 'seq_mismatch':
      return `the event stored at seq ${seq} says it is another seq`;
    case 'hash_mismatch':
      return `event ${seq} was changed after it was written: its content does not match its hash`;
    case 'prev_hash_mismatch':
      return `event ${seq} does not link to event ${seq - 1}: an event before it was replaced with its hash recomputed`;
    case 'column_mismatch':
      return `event ${seq}'s index columns differ from the event itself: queries would show it wrongly`;
    default:
      return reason;
  }
}

/** Every stream the trail knows of, and `expected` ones even when they hold nothing; intact only if each is. */
export async function verifyAll(db: Queryable, options: VerifyOptions & { expected?: readonly string[] }): Promise<AuditVerifyReport> {
  const streams: AuditVerifyResult[] = [];
  const names = [...new Set([...(options.expected ?? []), ...(await listStreams(db))])];
  for (const stream of names) streams.push(await verifyChain(db, stream, options));
  return { ok: streams.every((r) => r.ok), streams };
}
