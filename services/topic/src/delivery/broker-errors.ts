import { TemporarilyUnavailable } from '@keyway/kit';
import { BrokerUnavailableError } from '@keyway/broker';

export const RETRY_AFTER_SEC = 5;

/** RabbitMQ down means 503 with Retry-After, never a 500 and never "accepted" (design.md: fail closed). */
export function toHttpError(err: unknown): unknown {
  if (err instanceof BrokerUnavailableError) {
    return new TemporarilyUnavailable('the message broker is unavailable, retry later', err.message, { 'Retry-After': String(RETRY_AFTER_SEC) });
  }
  return err;
}

export async function brokerCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toHttpError(err);
  }
}
