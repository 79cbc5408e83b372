import type { Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import type { AuditLog } from './audited.ts';
import type { AuditInput } from './event.ts';

export interface AggregateOptions {
  /** the service's audit log, which receives one event per key and window */
  log: AuditLog;
  /** where the counters live: the service's own store, shared by its instances */
  store: Store;
  logger: Logger;
  /** the action of the aggregated event, e.g. refusals.aggregated */
  action: string;
  /** what the key is in the event: the source address, or the account (detail.username) */
  keyField: 'sourceAddress' | 'username';
  /** default one minute */
  windowMs?: number;
  /**
   * Distinct keys one window records: beyond them, counts go to one overflow bucket (event without a
   * key, detail.overflow), so however many addresses a flood comes from, a window writes at most
   * maxKeysPerWindow + 1 events. Default 1000.
   */
  maxKeysPerWindow?: number;
  /** how often closed windows are written (default windowMs / 4, at most 15 s); 0 = only by flush() */
  flushEveryMs?: number;
  now?: () => number;
}

const OVERFLOW = '*';
const REASON = /^[a-z_]{1,40}$/;
/** counters outlive their window by this much, in case no instance is left to write it (then they are dropped) */
const KEEP_WINDOWS = 60;

/**
 * Aggregated audit of noise (issue 9): refusals that are not security events of an account (garbage
 * tokens, malformed requests, throttled attempts) are counted per key (source address or account) and
 * window in the store, and each window is written as ONE event per key when it has closed, with the
 * total and a count per reason. The cost of a refusal is one or two INCRs, whatever the flood; the
 * trail grows by at most maxKeysPerWindow + 1 events per window and stream.
 *
 * Several instances count into the same keys; the one that claims a closed window (SET NX) writes it.
 * A window whose events cannot be written (the trail is down) is released and retried on the next flush.
 */
export function refusalAggregator(options: AggregateOptions) {
  const { log, store, logger, action } = options;
  const windowMs = options.windowMs ?? 60_000;
  const maxKeys = options.maxKeysPerWindow ?? 1000;
  const now = options.now ?? Date.now;
  const keepMs = windowMs * KEEP_WINDOWS;
  const base = `agg:${action}`;
  const windowsKey = `${base}:windows`;
  const keysOf = (w: number) => `${base}:${w}:keys`;
  const reasonsOf = (w: number, key: string) => `${base}:${w}:reasons:${key}`;
  const countOf = (w: number, key: string, reason: string) => `${base}:${w}:n:${key}:${reason}`;
  const distinctOf = (w: number) => `${base}:${w}:distinct`;
  const claimOf = (w: number) => `${base}:${w}:claimed`;

  async function count(key: string, reason: string): Promise<void> {
    const w = Math.floor(now() / windowMs) * windowMs;
    const r = REASON.test(reason) ? reason : 'other';
    let k = key.replace(/[^0-9A-Za-z.:@_+-]/g, '_').slice(0, 254) || 'unknown';
    if (!(await store.sismember(keysOf(w), k))) {
      if ((await store.incr(distinctOf(w), { ttlMs: keepMs })) > maxKeys) k = OVERFLOW;
      if ((await store.sadd(keysOf(w), k)) > 0) await store.sadd(windowsKey, String(w));
    }
    if ((await store.incr(countOf(w, k, r), { ttlMs: keepMs })) === 1) await store.sadd(reasonsOf(w, k), r);
  }

  async function writeWindow(w: number): Promise<number> {
    const keys = await store.smembers(keysOf(w));
    const drafts: AuditInput[] = [];
    const doomed = [keysOf(w), distinctOf(w)];
    for (const key of keys.sort()) {
      const reasons = (await store.smembers(reasonsOf(w, key))).sort();
      const counts = await Promise.all(reasons.map(async (r) => Number((await store.get(countOf(w, key, r))) ?? 0)));
      doomed.push(reasonsOf(w, key), ...reasons.map((r) => countOf(w, key, r)));
      const total = counts.reduce((a, b) => a + b, 0);
      if (total === 0) continue;
      const who = key === OVERFLOW ? {} : options.keyField === 'sourceAddress' ? { sourceAddress: key } : { detail: { username: key } };
      drafts.push({
        ...who,
        action,
        outcome: 'denied',
        reason: reasons.length === 1 ? reasons[0] : 'mixed',
        detail: {
          ...who.detail,
          count: String(total),
          reasons: reasons.map((r, i) => `${r}=${counts[i]}`).join(','),
          window_start: new Date(w).toISOString(),
          window_end: new Date(w + windowMs).toISOString(),
          ...(key === OVERFLOW ? { overflow: `more than ${maxKeys} distinct keys in the window` } : {}),
        },
      });
    }
    for (const draft of drafts) await log.record(draft);
    await store.del(...doomed);
    return drafts.length;
  }

  /** Writes every closed window not yet written (by this or another instance); answers the events written. */
  async function flush(): Promise<number> {
    const closed = (await store.smembers(windowsKey)).map(Number).filter((w) => Number.isFinite(w) && w + windowMs <= now());
    let written = 0;
    for (const w of closed.sort((a, b) => a - b)) {
      if (!(await store.set(claimOf(w), '1', { ttlMs: keepMs, ifAbsent: true }))) continue;
      try {
        written += await writeWindow(w);
        await store.srem(windowsKey, String(w));
      } catch (err) {
        await store.del(claimOf(w)).catch(() => undefined);
        throw err;
      }
    }
    return written;
  }

  const every = options.flushEveryMs ?? Math.min(15_000, Math.max(250, Math.floor(windowMs / 4)));
  const timer = every > 0 ? setInterval(() => void flush().catch((err: unknown) => logger.warn('audit.aggregate_flush_failed', { action, err })), every) : undefined;
  timer?.unref();

  return {
    count,
    flush,
    /** stops the timer after writing what has closed (a window still open is written by another instance, or dropped) */
    async close(): Promise<void> {
      if (timer) clearInterval(timer);
      await flush().catch((err: unknown) => logger.warn('audit.aggregate_flush_failed', { action, err }));
    },
  };
}
export type RefusalAggregator = ReturnType<typeof refusalAggregator>;
