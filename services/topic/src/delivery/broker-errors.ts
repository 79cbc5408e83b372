import { TemporarilyUnavailable } from '@keyway/kit';
import { BrokerUnavailableError } from '@keyway/broker';

export const RETRY_AFTER_SEC = 5;

/** RabbitMQ down means 503 with Retry-After, never a 500 and never "accepted" (design.md: fail closed). */
export async function brokerCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof BrokerUnavailableError) {
      throw new TemporarilyUnavailable('the message broker is unavailable, retry later', err.message, { 'Retry-After': String(RETRY_AFTER_SEC) });
    }
    throw err;
  }
}
