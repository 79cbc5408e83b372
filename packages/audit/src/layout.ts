import { AuditEvent } from '@keyway/contracts';
import type { Queryable } from '@keyway/db';

/**
 * Storage layout (packages/db/migrations/0003_audit.sql), in schema keyway_audit:
 *
 *   events       one row per event, PK (stream, seq); `event` is the canonical JSON its hash covers, the
 *                other columns are copies for the indexes (verify checks they agree)
 *   anchors      per stream, {seq, hash} of the newest event retention trimmed (absent: nothing trimmed)
 *   checkpoints  signed stream heads (checkpoint.ts)
 *
 * A stream's head is its row with the highest seq, or its anchor when retention trimmed every event.
 */
export const EVENTS = 'keyway_audit.events';
const ANCHORS = 'keyway_audit.anchors';
export const CHECKPOINTS = 'keyway_audit.checkpoints';

/** The columns an event is read back with. */
export const EVENT_COLUMNS = 'stream, seq, id, time, tenant, subject, action, outcome, prev_hash, hash, event';

export interface EventRow {
  stream: string;
  /** bigint: a string from pg, a number from PGlite */
  seq: string | number;
  id: string;
  time: Date;
  tenant: string | null;
  subject: string | null;
  action: string;
  outcome: string;
  prev_hash: string;
  hash: string;
  event: string;
  [column: string]: unknown;
}

/** A position in a chain: the head (newest event) or the anchor (newest trimmed event). */
export interface ChainLink {
  seq: number;
  hash: string;
}

/** Where every chain starts: the first event's prevHash is 64 zeros. */
const GENESIS: ChainLink = { seq: 0, hash: '0'.repeat(64) };

/** The stream's retention anchor (GENESIS when nothing was trimmed). */
export async function readAnchor(db: Queryable, stream: string): Promise<ChainLink> {
  const [row] = await db.query<{ seq: string | number; hash: string }>(`SELECT seq, hash FROM ${ANCHORS} WHERE stream = $1`, [stream]);
  return row ? { seq: Number(row.seq), hash: row.hash } : GENESIS;
}

/** The newest event of the stream, else its anchor, else GENESIS: what the next append links to. */
export async function readHead(db: Queryable, stream: string): Promise<ChainLink> {
  const [row] = await db.query<{ seq: string | number; hash: string }>(`SELECT seq, hash FROM ${EVENTS} WHERE stream = $1 ORDER BY seq DESC LIMIT 1`, [stream]);
  return row ? { seq: Number(row.seq), hash: row.hash } : readAnchor(db, stream);
}

/** The rows of `stream` with seq in from..to (inclusive), in seq order. */
export const readRows = (db: Queryable, stream: string, from: number, to: number): Promise<EventRow[]> =>
  db.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM ${EVENTS} WHERE stream = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq`, [stream, from, to]);

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

/** A stored event, or null when the bytes are not a well-formed event. */
export function parseEvent(raw: string): AuditEvent | null {
  const parsed = AuditEvent.safeParse(parseJson(raw));
  return parsed.success ? parsed.data : null;
}

/** Whether a row's index columns say what its hashed event says (an edited column would mislead queries). */
export const columnsAgree = (row: EventRow, e: AuditEvent): boolean =>
  row.stream === e.service &&
  Number(row.seq) === e.seq &&
  row.id === e.id &&
  row.time.getTime() === Date.parse(e.time) &&
  row.tenant === (e.tenant ?? null) &&
  row.subject === (e.subject ?? null) &&
  row.action === e.action &&
  row.outcome === e.outcome &&
  row.prev_hash === e.prevHash &&
  row.hash === e.hash;

/** Distinct streams of a (stream, …)-keyed table: one index probe per stream rather than a scan. */
const distinct = (name: string, table: string) =>
  `${name} AS (SELECT min(stream) AS stream FROM ${table} UNION ALL SELECT (SELECT min(stream) FROM ${table} WHERE stream > ${name}.stream) FROM ${name} WHERE ${name}.stream IS NOT NULL)`;

/** Every stream the trail knows of: with events, trimmed to nothing, or only checkpointed (then emptied). */
export async function listStreams(db: Queryable): Promise<string[]> {
  const rows = await db.query<{ stream: string }>(
    `WITH RECURSIVE ${distinct('e', EVENTS)}, ${distinct('c', CHECKPOINTS)}
     SELECT stream FROM e WHERE stream IS NOT NULL UNION SELECT stream FROM ${ANCHORS} UNION SELECT stream FROM c WHERE stream IS NOT NULL ORDER BY stream`,
  );
  return rows.map((r) => r.stream);
}
