/**
 * Why a message was dead-lettered, the same for both brokers (issue 16): the reason names follow Azure
 * Service Bus, so a SIEM team reads what it knows; a receiver may give its own.
 */
export const TTL_EXPIRED = 'TTLExpiredException';
export const MAX_DELIVERY_COUNT_EXCEEDED = 'MaxDeliveryCountExceeded';
export const MAX_QUEUE_LENGTH_EXCEEDED = 'MaxQueueLengthExceeded';
/** nack(false) without a reason of the receiver's own */
export const REJECTED = 'Rejected';

export interface DeadLetterReason {
  reason: string;
  description: string;
}

export function ttlExpired(expiresAt: number | undefined): DeadLetterReason {
  return { reason: TTL_EXPIRED, description: expiresAt === undefined ? 'its time to live ended' : `its time to live ended at ${new Date(expiresAt).toISOString()}` };
}

export function maxDeliveryCountExceeded(deliveries: number): DeadLetterReason {
  return { reason: MAX_DELIVERY_COUNT_EXCEEDED, description: `delivered ${deliveries} times` };
}

export const maxQueueLengthExceeded: DeadLetterReason = { reason: MAX_QUEUE_LENGTH_EXCEEDED, description: 'the oldest message of a full subscription queue' };

export const rejected: DeadLetterReason = { reason: REJECTED, description: 'rejected by its receiver' };

/** a receiver's own reason: Delivery.deadLetter(reason, description) */
export function checkedReason(reason: string, description: string): DeadLetterReason {
  if (typeof reason !== 'string' || reason.length === 0) throw new TypeError('a dead-letter reason must be a non-empty string');
  if (typeof description !== 'string') throw new TypeError('a dead-letter description must be a string');
  return { reason, description };
}

/** A time to live from now as an absolute expiry (ms since the epoch); none for 0 or absent. */
export function expiresAtOf(ttlMs: number | undefined, now = Date.now()): number | undefined {
  if (ttlMs === undefined || ttlMs === 0) return undefined;
  if (!Number.isFinite(ttlMs) || ttlMs < 0) throw new RangeError('ttlMs must be a finite number >= 0');
  return now + Math.ceil(ttlMs);
}

/** resubmitDeadLetters' `max` */
export function checkMax(max: number): void {
  if (!Number.isInteger(max) || max < 0) throw new RangeError('max must be an integer >= 0');
}
