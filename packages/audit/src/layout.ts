import { AuditEvent, Sha256Hex } from '@keyway/contracts';
import type { Store } from '@keyway/store';
import { z } from 'zod';
import { AuditIntegrityError } from './errors.ts';

/**
 * Storage layout, relative to the audit store's prefix. Every service writes to one audit keyspace
 * (e.g. a store with prefix "keyway:audit:"), so the trail can be queried across services, and
 * appends only to its own stream, so each service has its own chain:
 *
 *   stream:<stream>:head         {"hash","seq"} of the newest event (absent: empty stream)
 *   stream:<stream>:anchor       {"hash","seq"} of the newest trimmed event (absent: nothing trimmed yet)
 *   stream:<stream>:event:<seq>  the event as canonical JSON
 *   idx:all  idx:stream:<stream>  idx:tenant:<tenant>  idx:subject:<subject>  idx:action:<action>  idx:outcome:<outcome>
 *                                lex-ordered sets of "<id>:<stream>:<seq>"; ids start with their time, so these sort by time
 *   probe:<uuid>                 the readiness probe's key, deleted at once (short TTL in case of a crash)
 *   rl:noise:<stream>:…          recordBounded()'s per-window count of a stream's noise (expires with its window)
 *   agg:audit.noise_suppressed:… the counts of noise past that budget, until their window is written (aggregate.ts)
 */
export const layout = {
  head: (stream: string) => `stream:${stream}:head`,
  anchor: (stream: string) => `stream:${stream}:anchor`,
  event: (stream: string, seq: number) => `stream:${stream}:event:${seq}`,
  probe: (id: string) => `probe:${id}`,
  allIndex: 'idx:all',
  index: (field: 'stream' | 'tenant' | 'subject' | 'action' | 'outcome', value: string) => `idx:${field}:${value}`,
};

/** Every index an event appears in. */
export function indexKeys(stream: string, event: AuditEvent): string[] {
  const keys = [layout.allIndex, layout.index('stream', stream), layout.index('action', event.action), layout.index('outcome', event.outcome)];
  if (event.tenant !== undefined) keys.push(layout.index('tenant', event.tenant));
  if (event.subject !== undefined) keys.push(layout.index('subject', event.subject));
  return keys;
}

export const indexMember = (stream: string, event: Pick<AuditEvent, 'id' | 'seq'>): string => `${event.id}:${stream}:${event.seq}`;

const MEMBER = /^([0-9A-HJKMNP-TV-Z]{26}):([a-z][a-z0-9-]{0,31}):([1-9]\d{0,15})$/;

export function parseMember(member: string): { id: string; stream: string; seq: number } | null {
  const m = MEMBER.exec(member);
  return m ? { id: m[1] as string, stream: m[2] as string, seq: Number(m[3]) } : null;
}

/** A position in a chain: the head (newest event) or the anchor (newest trimmed event). */
export interface ChainLink {
  seq: number;
  hash: string;
}

/** Where every chain starts: the first event's prevHash is 64 zeros. */
const GENESIS: ChainLink = { seq: 0, hash: '0'.repeat(64) };

const ChainLinkSchema = z.strictObject({ hash: Sha256Hex, seq: z.number().int().nonnegative() });

export const serializeLink = (link: ChainLink): string => JSON.stringify({ hash: link.hash, seq: link.seq });

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

/** The link stored under `key` (GENESIS when absent) and its raw value, which appends compare-and-set against. */
export async function readLink(store: Store, key: string): Promise<{ raw: string | null; link: ChainLink }> {
  const raw = await store.get(key);
  if (raw === null) return { raw, link: GENESIS };
  const parsed = ChainLinkSchema.safeParse(parseJson(raw));
  if (!parsed.success) throw new AuditIntegrityError(`audit ${key} is unreadable`);
  return { raw, link: parsed.data };
}

/** A stored event, or null when the bytes are not a well-formed event. */
export function parseEvent(raw: string): AuditEvent | null {
  const parsed = AuditEvent.safeParse(parseJson(raw));
  return parsed.success ? parsed.data : null;
}

/** Raw events `from`..`to` (inclusive) of a stream, null where absent; fetched concurrently. */
export function readRaw(store: Store, stream: string, from: number, to: number): Promise<(string | null)[]> {
  const seqs = Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
  return Promise.all(seqs.map((seq) => store.get(layout.event(stream, seq))));
}
