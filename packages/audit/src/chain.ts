import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuditStream } from '@keyway/contracts';
import type { Store, StoreWrite } from '@keyway/store';
import { AuditEventError } from './errors.ts';
import type { AuditDraft, AuditEvent } from './event.ts';
import { indexKeys, indexMember, layout, readLink, serializeLink } from './layout.ts';

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
}

/**
 * Appends events to a stream's chain, in the given order, atomically with respect to every other
 * appender in any process.
 *
 * Why compare-and-set on the head plus retry, rather than computing the link inside Redis: the chain
 * hash is SHA-256, which Redis scripts cannot compute (they offer only SHA-1). So the appender reads
 * the head {seq, hash}, builds and hashes the events linked from it, then commits the events, the new
 * head and the index entries in one `commitIf` guarded by the head it read. If another appender moved
 * the head first, nothing is written and it retries on the new head, so two appenders can never both
 * extend the same link (no fork) and a crash can never leave an event without its head or indexes.
 * Lock-free: a crashed appender holds nothing. Cost is one round trip per lost race; createAuditLog
 * queues a process's appends and commits them in groups, so races are only between processes.
 */
export async function appendEvents(store: Store, stream: string, drafts: AuditDraft[], options: AppendOptions = {}): Promise<AuditEvent[]> {
  if (!AuditStream.safeParse(stream).success) throw new AuditEventError(`audit stream "${stream}" is not a valid stream name`);
  const maxAttempts = options.maxAttempts ?? 100;
  const headKey = layout.head(stream);
  for (let attempt = 1; ; attempt++) {
    const head = await readLink(store, headKey);
    const events: AuditEvent[] = [];
    const writes: StoreWrite[] = [];
    let prev = head.link;
    for (const draft of drafts) {
      const unsigned = { ...draft, seq: prev.seq + 1, prevHash: prev.hash };
      const event: AuditEvent = { ...unsigned, hash: eventHash(unsigned) };
      const member = indexMember(stream, event);
      writes.push({ op: 'set', key: layout.event(stream, event.seq), value: canonicalJson(event) });
      for (const key of indexKeys(stream, event)) writes.push({ op: 'zadd', key, members: [member] });
      events.push(event);
      prev = event;
    }
    writes.push({ op: 'set', key: headKey, value: serializeLink(prev) });
    if (await store.commitIf({ key: headKey, expected: head.raw }, writes)) return events;
    if (attempt >= maxAttempts) throw new Error(`audit stream "${stream}": gave up after ${attempt} conflicting appends`);
    // jittered backoff spreads the losers out so the next round has fewer contenders
    await sleep(Math.random() * Math.min(2 ** attempt, 50));
  }
}

/** Appends one event; see appendEvents. */
export async function appendEvent(store: Store, stream: string, draft: AuditDraft, options: AppendOptions = {}): Promise<AuditEvent> {
  const [event] = await appendEvents(store, stream, [draft], options);
  return event as AuditEvent;
}
