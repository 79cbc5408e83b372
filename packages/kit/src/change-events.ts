import { type Broker, consumeEvents, type TopicRef } from '@keyway/broker';
import { CHANGE_EVENTS_TOPIC, ChangeEvent } from '@keyway/contracts';
import type { Logger } from './logger.ts';

/**
 * Follows the change-event topic as `consumer` (its own queue, so every follower sees every event).
 * A handler that throws leaves the event for another try: taking access away is retried, never skipped.
 */
export function followChangeEvents(broker: Broker, consumer: string, logger: Logger, handle: (event: ChangeEvent) => Promise<void>, topic: TopicRef = CHANGE_EVENTS_TOPIC) {
  return consumeEvents(broker, topic, consumer, ChangeEvent, handle, { onError: (err) => logger.warn('change event not handled yet; will retry', { err }) });
}
