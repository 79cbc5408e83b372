import type { Queryable } from '@keyway/db';
import { outageAnswer, ServerError, windowLimiter, type Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import { appendEvents } from './chain.ts';
import { auditEvent, type AuditDraft, type AuditEvent, type AuditInput } from './event.ts';
import { EVENTS, readHead } from './layout.ts';
import { auditMetrics, type AuditMetrics } from './metrics.ts';
import { refusalAggregator, type RefusalAggregator } from './aggregate.ts';

/** The database a trail is appended to and read from: a service's own, as its role (it may append to its own stream only). */
export type AuditDb = Queryable;

export interface AuditLogOptions {
  /** the trail: the service's database, as its own role */
  db: AuditDb;
  /** hot counters of recordBounded() (noise budget, suppressed counts): the service's store, shared by its instances */
  store: Store;
  /** the service name, which is also its stream: one hash chain per service */
  service: string;
  logger: Logger;
  metrics?: AuditMetrics;
  /** clock for event times; default Date.now */
  now?: () => number;
  /** the cap of recordBounded(): events per stream and window (default DEFAULT_NOISE_BUDGET) */
  noiseBudget?: { events: number; windowMs: number };
}

export interface AuditLog {
  readonly service: string;
  /** appends the event to the service's stream; throws ServerError (500 server_error) when it cannot */
  record(input: AuditInput): Promise<AuditEvent>;
  /**
   * Records a refusal that names no authenticated party (a failed login, a throttled one) within the
   * stream's noise budget, shared by every instance: past `noiseBudget.events` in a window, such
   * refusals are only counted, and each window's count is written as audit.noise_suppressed events
   * (one per source, at most 1001) by the first such refusal after the window has closed. So however
   * many addresses an attacker has, noise grows the trail by a bounded number of events per window.
   * Never throws (a refusal stays a refusal).
   */
  recordBounded(input: AuditInput): Promise<void>;
  /** for /readyz: rejects unless the audit store takes writes the way an append does */
  ready(): Promise<void>;
}

/** recordBounded()'s default: 600 subjectless refusals per stream and minute, about 0.4 MiB/min at most. */
const DEFAULT_NOISE_BUDGET = { events: 600, windowMs: 60_000 };

/** Events per commit: bounds one INSERT's size. */
const MAX_GROUP = 100;

/**
 * A service's audit log: every record() is durable in its stream's hash chain before it resolves.
 * Appends from one process go through one queue and are committed in groups (group commit): one
 * commit carries every event recorded while the previous one was in flight, so a busy instance makes
 * one round trip per group rather than racing itself for the head, and record() order is chain order.
 */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  const { db, store, service, logger } = options;
  const now = options.now ?? Date.now;
  const counters = options.metrics ?? auditMetrics();
  const queue: { draft: AuditDraft; resolve: (event: AuditEvent) => void; reject: (err: unknown) => void }[] = [];
  let committing = false;
  // where this instance's last append left the chain: the next group links to it without reading the head
  let head: { seq: number; hash: string } | undefined;

  async function commitQueued(): Promise<void> {
    committing = true;
    while (queue.length > 0) {
      const group = queue.splice(0, MAX_GROUP);
      try {
        const events = await appendEvents(
          db,
          service,
          group.map((q) => q.draft),
          { head },
        );
        head = events.at(-1);
        for (const [i, q] of group.entries()) q.resolve(events[i] as AuditEvent);
      } catch (err) {
        head = undefined;
        for (const q of group) q.reject(err);
      }
    }
    committing = false;
  }

  function append(draft: AuditDraft): Promise<AuditEvent> {
    return new Promise((resolve, reject) => {
      queue.push({ draft, resolve, reject });
      if (!committing) void commitQueued();
    });
  }

  const budget = options.noiseBudget ?? DEFAULT_NOISE_BUDGET;
  const noise = windowLimiter(store, { name: `noise:${service}`, points: budget.events, windowMs: budget.windowMs });
  let suppressed: RefusalAggregator | undefined;
  let flushedWindow = 0;

  const suppressing = () => (suppressed ??= refusalAggregator({ log, store, logger, action: 'audit.noise_suppressed', keyField: 'sourceAddress', windowMs: budget.windowMs, flushEveryMs: 0, now }));

  const log: AuditLog = {
    service,
    async recordBounded(input) {
      try {
        // Suppressed counts are written lazily, without a timer: by the first bounded refusal (of any
        // instance) after their window has closed.
        const window = Math.floor(now() / budget.windowMs);
        if (window !== flushedWindow) {
          flushedWindow = window;
          await suppressing().flush();
        }
        if ((await noise.hit(service)).allowed) {
          await log.record(input);
          return;
        }
        await suppressing().count(input.sourceAddress ?? 'unknown', input.reason ?? 'denied');
      } catch (err) {
        logger.warn('audit.noise_not_counted', { action: input.action, err });
      }
    },
    async record(input) {
      let event: AuditEvent;
      try {
        event = await append(auditEvent({ ...input, service }, now()));
      } catch (err) {
        counters.appendFailures.add(1, { service });
        logger.error('audit.append_failed', { action: input.action, outcome: input.outcome, err });
        // style rule 10: the audit write is part of the action; if it fails, the action fails: with
        // 503 when the trail's database is out of reach (an outage, like any other), else server_error
        throw outageAnswer(err) ?? new ServerError(undefined, `audit append failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      counters.events.add(1, { service, action: event.action, outcome: event.outcome });
      return event;
    },

    async ready() {
      // the next append links to the head, so it must be readable; Vault's audit devices log a test
      // message, but a probe event from every instance's /readyz would flood the trail, so this asks
      // the database whether an append would be taken: the role may insert, and the server is not a
      // read-only standby
      await readHead(db, service);
      const [row] = await db.query<{ writable: boolean }>(`SELECT has_table_privilege('${EVENTS}', 'INSERT') AND current_setting('transaction_read_only') = 'off' AS writable`);
      if (!row?.writable) throw new Error(`audit trail: ${service} cannot append to ${EVENTS}`);
    },
  };
  return log;
}
