import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { OAuthError, type Logger } from '@keyway/kit';
import type { TopicRef } from '@keyway/broker';
import type { Store } from '@keyway/store';
import { storeCall } from '../quotas/limits.ts';
import { RETRY_AFTER_SEC } from './broker-errors.ts';

/** the value of a batch id accepted within its window */
const ACCEPTED = 'accepted';
/**
 * A claim is a lease, renewed while its publish waits for the broker's confirm: an instance that dies
 * mid-publish (SIGKILL) holds the batch id at most this long, after which a retry on another instance
 * publishes it. Renewed every CLAIM_RENEW_MS, so a slow confirm keeps it.
 */
export const CLAIM_TTL_MS = 5_000;
const CLAIM_RENEW_MS = 1_500;
/** how often a publish waiting for another publish of the same batch id looks again */
const POLL_MS = 50;

/** 409: another publish of the batch id is still waiting for its confirm; its outcome decides what a retry gets. */
class PublishInProgress extends OAuthError {
  constructor(detail: string) {
    super(409, 'publish_in_progress', 'a publish of this batch id is still in progress; retry later (once accepted, it is answered as a duplicate)', detail, {
      'Retry-After': String(RETRY_AFTER_SEC),
    });
  }
}

export type PublishOutcome = 'published' | 'duplicate';

/**
 * Publisher duplicate detection (issue 16, as Azure Service Bus's): a batch id accepted for a topic
 * within the topic's window is answered as accepted again and not published twice. Shared by every
 * instance through the topic store (keys `duplicates:<tenant>:<topic>:<batch id>`, never the batch):
 * a publish claims the id (SET NX) before the broker sees the batch, marks it accepted for the window
 * once the broker confirmed, and drops its claim when the publish failed, so a retry publishes. A
 * publish that finds another's claim waits up to `inFlightWaitMs` for its outcome: accepted is a
 * duplicate, a dropped claim is taken over, still in flight is 409 publish_in_progress. Redis down is
 * 503 (fail closed): a batch is never published unchecked.
 */
export function duplicateDetection(store: Store, options: { inFlightWaitMs: number; logger: Logger }) {
  const { inFlightWaitMs, logger } = options;
  // tenant and topic names are slugs and a batch id has no spaces, so the key names one batch id of one topic
  const keyOf = (topic: TopicRef, batchId: string) => `duplicates:${topic.tenant}:${topic.topic}:${batchId}`;
  const checked = <T>(call: () => Promise<T>) => storeCall(call, 'the batch id cannot be checked for a duplicate right now, retry later');

  /** resolves with our claim once taken, or 'duplicate' when the batch id was accepted meanwhile */
  const claim = async (key: string): Promise<string | 'duplicate'> => {
    const mine = `claim:${randomUUID()}`;
    const giveUpAt = Date.now() + inFlightWaitMs;
    for (;;) {
      if (await checked(() => store.set(key, mine, { ifAbsent: true, ttlMs: CLAIM_TTL_MS }))) return mine;
      const held = await checked(() => store.get(key));
      if (held === ACCEPTED) return 'duplicate';
      // null: the other publish failed (or its claim expired) just now, so this one claims it
      if (held === null) continue;
      if (Date.now() >= giveUpAt) throw new PublishInProgress(`${key} still claimed after ${inFlightWaitMs} ms`);
      await sleep(POLL_MS);
    }
  };

  return {
    /** runs `publish` unless the batch id was accepted within `windowSec` (0: always runs it, nothing stored) */
    async once(topic: TopicRef, batchId: string, windowSec: number, publish: () => Promise<void>): Promise<PublishOutcome> {
      if (windowSec <= 0) {
        await publish();
        return 'published';
      }
      const key = keyOf(topic, batchId);
      const mine = await claim(key);
      if (mine === 'duplicate') return mine;
      const renewal = setInterval(() => {
        void store.compareAndSet(key, mine, mine, { ttlMs: CLAIM_TTL_MS }).catch((err: unknown) => logger.warn('duplicate.claim_not_renewed', { key, err }));
      }, CLAIM_RENEW_MS);
      try {
        await publish();
      } catch (err) {
        // only our own claim: one that expired and was taken by another publish is that publish's
        await store.commitIf({ key, expected: mine }, [{ op: 'del', key }]).catch((dropErr: unknown) => {
          logger.warn('duplicate.claim_not_dropped', { key, err: dropErr });
        });
        throw err;
      } finally {
        clearInterval(renewal);
      }
      // The broker has the batch: 201 whatever the store says now. Unmarked, the claim lasts
      // CLAIM_TTL_MS, in which a retry waits and is answered 409, and after which it would publish again.
      await store.set(key, ACCEPTED, { ttlMs: windowSec * 1000 }).catch((err: unknown) => {
        logger.warn('duplicate.not_marked', { key, err });
      });
      return 'published';
    },
  };
}
export type DuplicateDetection = ReturnType<typeof duplicateDetection>;
