import { EXPIRES_AT_HEADER } from './topology.ts';

/**
 * Why a message was dead-lettered, the same for both brokers (issue 16): the reason names follow Azure
 * Service Bus, so a SIEM team reads what it knows; a receiver may give its own.
 */
export interface DeadLetterReason {
  reason: string;
  description: string;
}

export function ttlExpired(expiresAt: number | undefined): DeadLetterReason {
  return { reason: 'TTLExpiredException', description: expiresAt === undefined ? 'its time to live ended' : `its time to live ended at ${new Date(expiresAt).toISOString()}` };
}

export function maxDeliveryCountExceeded(deliveries: number): DeadLetterReason {
  return { reason: 'MaxDeliveryCountExceeded', description: `delivered ${deliveries} times` };
}

/** RabbitMQ's own delivery limit (`x-delivery-limit` of a quorum queue declared before issue 12), which counts returns of every kind */
export const overDeliveryLimit: DeadLetterReason = { reason: 'MaxDeliveryCountExceeded', description: "returned more often than its queue's x-delivery-limit" };

export const maxQueueLengthExceeded: DeadLetterReason = { reason: 'MaxQueueLengthExceeded', description: 'the oldest message of a full subscription queue' };

/** nack(false): RabbitMQ's own dead-lettering, which cannot carry a reason of the receiver's */
export const rejected: DeadLetterReason = { reason: 'Rejected', description: 'rejected by its receiver' };

/** a receiver's own reason: Delivery.deadLetter(reason, description) */
export function checkedReason(reason: string, description: string): DeadLetterReason {
  if (typeof reason !== 'string' || reason.length === 0) throw new TypeError('a dead-letter reason must be a non-empty string');
  if (typeof description !== 'string') throw new TypeError('a dead-letter description must be a string');
  return { reason, description };
}

/** when the time to live of a message with these headers ends (ms since the epoch), if it has one */
export function expiresAtOfHeaders(headers: Record<string, unknown>): number | undefined {
  const value = headers[EXPIRES_AT_HEADER];
  return typeof value === 'number' ? value : undefined;
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
