import { AuditQuery } from '@keyway/contracts';
import { InvalidRequest, parseInput } from '@keyway/kit';
import type { LexBound, Store } from '@keyway/store';
import { eventIdTime, type AuditEvent } from './event.ts';
import { layout, parseEvent, parseMember } from './layout.ts';

/** The filters and paging of `queryEvents`: the AuditQuery contract, with a numeric limit. */
export type AuditQueryInput = Omit<AuditQuery, 'limit'> & { limit?: number };

export interface AuditQueryPage {
  events: AuditEvent[];
  /** pass as `cursor` for the next page; null when there is nothing more */
  nextCursor: string | null;
}

/** Index members examined per page at most: bounds the cost of a page whatever the filters. */
const SCAN_BUDGET = 5000;

type Query = ReturnType<typeof AuditQuery.parse>;

/**
 * The most selective index the filters allow; the remaining filters are checked on the events read.
 * Subjects and tenants are the narrow ones; the outcome index mostly serves "all denials".
 */
function chooseIndex(q: Query): string {
  if (q.subject !== undefined) return layout.index('subject', q.subject);
  if (q.tenant !== undefined) return layout.index('tenant', q.tenant);
  if (q.action !== undefined) return layout.index('action', q.action);
  if (q.stream !== undefined) return layout.index('stream', q.stream);
  if (q.outcome !== undefined) return layout.index('outcome', q.outcome);
  return layout.allIndex;
}

const matches = (q: Query, stream: string, e: AuditEvent): boolean =>
  (q.stream === undefined || q.stream === stream) &&
  (q.tenant === undefined || q.tenant === e.tenant) &&
  (q.subject === undefined || q.subject === e.subject) &&
  (q.action === undefined || q.action === e.action) &&
  (q.outcome === undefined || q.outcome === e.outcome);

// The cursor is the index member of the last event examined; opaque to callers.
const encodeCursor = (member: string): string => Buffer.from(member).toString('base64url');
function decodeCursor(cursor: string): string {
  const member = Buffer.from(cursor, 'base64url').toString();
  if (!parseMember(member)) throw new InvalidRequest('query.cursor: not a cursor from a previous page');
  return member;
}

const tighterMin = (a: LexBound | undefined, b: LexBound): LexBound => (a === undefined || b.value > a.value ? b : a);
const tighterMax = (a: LexBound | undefined, b: LexBound): LexBound => (a === undefined || b.value < a.value ? b : a);

/**
 * Audit events by stream, tenant, subject, action, outcome and time range (`from` inclusive, `to`
 * exclusive), newest first by default (`order: 'oldest'` for the other way), in pages of `limit` (at
 * most 500) with an opaque cursor. Bad parameters throw InvalidRequest.
 *
 * Cost: one index is walked in time order (members start with the time-sortable event id, so the time
 * range is a range of the index) and the other filters are checked on the events read. A page examines
 * at most SCAN_BUDGET index members; when the filters are sparse within the chosen index a page can hold
 * fewer than `limit` events while `nextCursor` is still set; keep paging until it is null.
 */
export async function queryEvents(store: Store, query: AuditQueryInput): Promise<AuditQueryPage> {
  const q = parseInput(AuditQuery, query, 'query');
  const index = chooseIndex(q);
  const newestFirst = q.order === 'newest';
  let min: LexBound | undefined = q.from === undefined ? undefined : { value: eventIdTime(Date.parse(q.from)), inclusive: true };
  let max: LexBound | undefined = q.to === undefined ? undefined : { value: eventIdTime(Date.parse(q.to)), inclusive: false };
  const resumeAfter = (member: string): void => {
    const bound = { value: member, inclusive: false };
    if (newestFirst) max = tighterMax(max, bound);
    else min = tighterMin(min, bound);
  };
  if (q.cursor !== undefined) resumeAfter(decodeCursor(q.cursor));

  const events: AuditEvent[] = [];
  const chunk = Math.max(q.limit, 100);
  let examined = 0;
  for (;;) {
    const want = Math.min(chunk, SCAN_BUDGET - examined);
    const members = await store.zrangeByLex(index, { min, max, reverse: newestFirst, limit: want });
    const located = members.map(parseMember);
    const raws = await Promise.all(located.map((m) => (m ? store.get(layout.event(m.stream, m.seq)) : null)));
    for (const [i, member] of members.entries()) {
      const where = located[i];
      const raw = raws[i];
      // an index entry without its event (trimmed meanwhile, or deleted: verify reports that) is skipped
      const event = where && raw ? parseEvent(raw) : null;
      if (where && event && event.id === where.id && matches(q, where.stream, event)) {
        events.push(event);
        if (events.length === q.limit) return { events, nextCursor: encodeCursor(member) };
      }
    }
    examined += members.length;
    const last = members.at(-1);
    if (last === undefined || members.length < want) return { events, nextCursor: null };
    if (examined >= SCAN_BUDGET) return { events, nextCursor: encodeCursor(last) };
    resumeAfter(last);
  }
}
