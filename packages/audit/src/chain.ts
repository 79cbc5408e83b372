import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuditStream } from '@keyway/contracts';
import type { Queryable } from '@keyway/db';
import { AuditEventError } from './errors.ts';
import type { AuditDraft, AuditEvent } from './event.ts';
import { EVENT_COLUMNS, EVENTS, readHead, type ChainLink } from './layout.ts';

/**
 * Canonical JSON (RFC 8785 for the values an event holds: strings, safe integers, flat objects):
 * object keys sorted by UTF-16 code units, no whitespace, undefined members left out. The same event
 * always serializes to the same bytes, whoever wrote it, so its hash can be recomputed.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const members = Object.entries(value)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${members.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** SHA-256 (hex) over the canonical JSON of the event without `hash`; seq and prevHash are inside, so each event commits to its place. */
export function eventHash(event: Omit<AuditEvent, 'hash'>): string {
  return createHash('sha256').update(canonicalJson(event)).digest('hex');
}

export interface AppendOptions {
  /** give up after this many lost races for the head; default 100 */
  maxAttempts?: number;
  /**
   * The head as the caller last left it (its previous append): the first attempt links to it without
   * reading the head, saving a round trip; if another appender moved on, the insert loses on the
   * primary key and the retry reads the head as usual.
   */
  head?: ChainLink;
}

/** PostgreSQL's unique_violation: another appender took the seq first. */
const UNIQUE_VIOLATION = '23505';

/**
 * Appends events to a stream's chain, in the given order, atomically with respect to every other
 * appender in any process.
 *
 * The chain link is the previous row: the appender reads the head (the stream's newest row), builds
 * and hashes the events linked from it, and inserts them in one statement. If another appender took
 * the next seq first, the primary key (stream, seq) refuses the whole insert and it retries on the new
 * head, so two appenders can never both extend the same link (no fork), and nothing is left half
 * written. Lock-free: a crashed appender holds nothing. createAuditLog queues a process's appends and
 * commits them in groups, so races are only between instances.
 */
export async function appendEvents(db: Queryable, stream: string, drafts: AuditDraft[], options: AppendOptions = {}): Promise<AuditEvent[]> {
  if (!AuditStream.safeParse(stream).success) throw new AuditEventError(`audit stream "${stream}" is not a valid stream name`);
  if (drafts.some((d) => d.service !== stream)) throw new AuditEventError(`audit stream "${stream}" takes only events of service "${stream}"`);
  const maxAttempts = options.maxAttempts ?? 100;
  for (let attempt = 1; ; attempt++) {
    let prev = attempt === 1 && options.head ? options.head : await readHead(db, stream);
    const events: AuditEvent[] = [];
    const params: unknown[] = [];
    const rows: string[] = [];
    for (const draft of drafts) {
      const unsigned = { ...draft, seq: prev.seq + 1, prevHash: prev.hash };
      const event: AuditEvent = { ...unsigned, hash: eventHash(unsigned) };
      const n = params.length;
      params.push(stream, event.seq, event.id, event.time, event.tenant ?? null, event.subject ?? null, event.action, event.outcome, event.prevHash, event.hash, canonicalJson(event));
      rows.push(`(${Array.from({ length: 11 }, (_, i) => `$${n + i + 1}`).join(', ')})`);
      events.push(event);
      prev = event;
    }
    try {
      await db.query(`INSERT INTO ${EVENTS} (${EVENT_COLUMNS}) VALUES ${rows.join(', ')}`, params);
      return events;
    } catch (err) {
      if ((err as { code?: unknown }).code !== UNIQUE_VIOLATION) throw err;
    }
    if (attempt >= maxAttempts) throw new Error(`audit stream "${stream}": gave up after ${attempt} conflicting appends`);
    // jittered backoff spreads the losers out so the next round has fewer contenders
    await sleep(Math.random() * Math.min(2 ** attempt, 50));
  }
}

/** Appends one event; see appendEvents. */
export async function appendEvent(db: Queryable, stream: string, draft: AuditDraft, options: AppendOptions = {}): Promise<AuditEvent> {
  const [event] = await appendEvents(db, stream, [draft], options);
  return event as AuditEvent;
}
