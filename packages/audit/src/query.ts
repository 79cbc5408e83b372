import { AuditQuery } from '@keyway/contracts';
import { InvalidRequest, parseInput } from '@keyway/kit';
import type { Queryable } from '@keyway/db';
import { eventIdTime, type AuditEvent } from './event.ts';
import { EVENT_COLUMNS, EVENTS, parseEvent, type EventRow } from './layout.ts';

/** The filters and paging of `queryEvents`: the AuditQuery contract, with a numeric limit. */
export type AuditQueryInput = Omit<AuditQuery, 'limit'> & { limit?: number };

export interface AuditQueryPage {
  events: AuditEvent[];
  /** pass as `cursor` for the next page; null when there is nothing more */
  nextCursor: string | null;
}

type Query = ReturnType<typeof AuditQuery.parse>;

/** Where a page stopped: the (id, stream, seq) of its last event, the order every query walks in. */
interface Position {
  id: string;
  stream: string;
  seq: number;
}

const CURSOR = /^([0-9A-HJKMNP-TV-Z]{26}):([a-z][a-z0-9-]{0,31}):([1-9]\d{0,15})$/;

// opaque to callers
const encodeCursor = (p: Position): string => Buffer.from(`${p.id}:${p.stream}:${p.seq}`).toString('base64url');
function decodeCursor(cursor: string): Position {
  const m = CURSOR.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new InvalidRequest('query.cursor: not a cursor from a previous page');
  return { id: m[1] as string, stream: m[2] as string, seq: Number(m[3]) };
}

/**
 * Audit events by stream, tenant, subject, action, outcome and time range (`from` inclusive, `to`
 * exclusive), newest first by default (`order: 'oldest'` for the other way), in pages of `limit` (at
 * most 500) with an opaque cursor. Bad parameters throw InvalidRequest.
 *
 * Cost: events are walked in (id, stream, seq) order on the index of the most selective filter
 * (0003_audit.sql); ids start with their time, so the time range is a range of that index. A page reads
 * limit + 1 rows, the last only to tell whether there is a next page.
 */
export async function queryEvents(db: Queryable, query: AuditQueryInput): Promise<AuditQueryPage> {
  const q: Query = parseInput(AuditQuery, query, 'query');
  const params: unknown[] = [];
  const where: string[] = [];
  const bind = (value: unknown) => `$${params.push(value)}`;
  for (const [column, value] of [
    ['stream', q.stream],
    ['tenant', q.tenant],
    ['subject', q.subject],
    ['action', q.action],
    ['outcome', q.outcome],
  ] as const) {
    if (value !== undefined) where.push(`${column} = ${bind(value)}`);
  }
  if (q.from !== undefined) where.push(`id >= ${bind(eventIdTime(Date.parse(q.from)))}`);
  if (q.to !== undefined) where.push(`id < ${bind(eventIdTime(Date.parse(q.to)))}`);
  const newestFirst = q.order === 'newest';
  if (q.cursor !== undefined) {
    const after = decodeCursor(q.cursor);
    where.push(`(id, stream, seq) ${newestFirst ? '<' : '>'} (${bind(after.id)}, ${bind(after.stream)}, ${bind(after.seq)})`);
  }
  const direction = newestFirst ? 'DESC' : 'ASC';
  const rows = await db.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM ${EVENTS} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id ${direction}, stream ${direction}, seq ${direction} LIMIT ${bind(q.limit + 1)}`,
    params,
  );
  const events: AuditEvent[] = [];
  for (const row of rows.slice(0, q.limit)) {
    // an unreadable event is left out of queries; verify reports it
    const event = parseEvent(row.event);
    if (event) events.push(event);
  }
  const last = rows[q.limit - 1];
  return { events, nextCursor: rows.length > q.limit && last ? encodeCursor({ id: last.id, stream: last.stream, seq: Number(last.seq) }) : null };
}
