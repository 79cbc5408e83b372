import { tooManyRequests, windowLimiter, type Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import { refusalAggregator } from './aggregate.ts';
import type { AuditLog } from './audited.ts';

export interface NoiseGateOptions {
  /** the service's audit log, which receives one refusals.aggregated event per source and window */
  log: AuditLog;
  /** the service's own store, shared by its instances (limit counters and aggregated counts) */
  store: Store;
  logger: Logger;
  /** refusals one source may cause per limit window before it is refused with 429 */
  perSource: number;
  /** the window refusals are aggregated over */
  windowMs: number;
  /** the window of `perSource` (default windowMs) */
  limitWindowMs?: number;
}

/**
 * Issue 9: refusals that name no authenticated party (garbage tokens, malformed or throttled requests)
 * are noise an outsider can send at will. A source past its limit is refused before any work or audit
 * write; below it, each refusal is counted per source and window into one refusals.aggregated event,
 * never recorded one by one. One gate for every endpoint that faces such noise (PAS token, PAC /v1/sas).
 */
export function noiseGate(options: NoiseGateOptions) {
  const { log, store, logger, windowMs } = options;
  const limit = windowLimiter(store, { name: 'refusals-source', points: options.perSource, windowMs: options.limitWindowMs ?? windowMs });
  const aggregator = refusalAggregator({ log, store, logger, action: 'refusals.aggregated', keyField: 'sourceAddress', windowMs });
  return {
    /** before any work: throws 429 with Retry-After when the source is past its limit */
    async admit(source: string): Promise<void> {
      const limited = await limit.check(source);
      if (!limited.allowed) throw tooManyRequests(limited, `${limited.count} unauthenticated refusals of ${source} in the window`, 'too many refused requests; retry later');
    },
    /** counts one refusal of the source; never throws (a refusal stays a refusal when the store cannot count it) */
    async refused(source: string, reason: string): Promise<void> {
      await aggregator.count(source, reason).catch(() => undefined);
      await limit.hit(source).catch(() => undefined);
    },
    /** writes what has closed and stops the aggregator's timer */
    close: () => aggregator.close(),
  };
}
export type NoiseGate = ReturnType<typeof noiseGate>;
