import { ApiError, type TopicClient } from '@keyway/clients';
import { MAX_PREFETCH, type ReceivedMessage } from '@keyway/contracts';
import type { Logger } from '@keyway/kit';
import type { TopicAddress } from './credentials/sas.ts';

/** How one batch's complete ended: a lost lock is a single complete's 410 or a batch entry's lock_lost. */
export type CompleteOutcome = 'completed' | 'lock_lost' | { failed: unknown };
type Lock = { message_id: string; lock_token: string };

/**
 * The agent's completes (issue 12). One per agent: a topic service older than the batch complete
 * (during a rolling upgrade) answers its path 404 not_found, and from then on every stream of the
 * agent completes one lock a request, as before.
 */
export function completions(deps: { topic: TopicClient; subscription: string; log: Logger }) {
  let batchCompletes = true;

  const completeEach = (sasKey: string, at: TopicAddress, locks: Lock[]) =>
    Promise.all(
      locks.map((lock) =>
        deps.topic.complete(sasKey, at.tenant, at.topic, deps.subscription, lock.message_id, lock.lock_token).then(
          (): CompleteOutcome => 'completed',
          (err: unknown): CompleteOutcome => (err instanceof ApiError && err.status === 410 ? 'lock_lost' : { failed: err }),
        ),
      ),
    );

  const completeTogether = async (sasKey: string, at: TopicAddress, locks: Lock[]): Promise<CompleteOutcome[]> => {
    try {
      const results = await deps.topic.completeMany(sasKey, at.tenant, at.topic, deps.subscription, locks);
      return locks.map((lock, i) => {
        const result = results[i];
        return result?.lock_token === lock.lock_token ? result.status : { failed: new Error('the complete answer does not name the batch') };
      });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && err.code === 'not_found') {
        batchCompletes = false;
        deps.log.warn('the topic service has no batch complete (an older version): completing one batch a request');
        return completeEach(sasKey, at, locks);
      }
      return locks.map(() => ({ failed: err }));
    }
  };

  /**
   * Completes with one key and address (a stream's, or a long poll's): at most one request in flight;
   * the batches that become durable meanwhile go together in the next one, as one AMQP disposition
   * settles many deliveries. No timer: a lone batch is completed at once. The returned function
   * resolves once the batch's complete is answered, however it ended; `settled` hears each outcome.
   */
  function completer(sasKey: string, at: TopicAddress, settled: (message: ReceivedMessage, outcome: CompleteOutcome) => void): (message: ReceivedMessage) => Promise<void> {
    let queued: Array<{ message: ReceivedMessage; done: () => void }> = [];
    let sending = false;

    const send = async (batch: typeof queued): Promise<void> => {
      const locks = batch.map(({ message }) => ({ message_id: message.message_id, lock_token: message.lock_token }));
      try {
        const outcomes = await (batchCompletes ? completeTogether(sasKey, at, locks) : completeEach(sasKey, at, locks));
        for (const [i, { message }] of batch.entries()) settled(message, outcomes[i] ?? { failed: new Error('no answer for the batch') });
      } finally {
        for (const { done } of batch) done();
      }
    };

    const flush = async (): Promise<void> => {
      sending = true;
      while (queued.length > 0) {
        const batch = queued.slice(0, MAX_PREFETCH);
        queued = queued.slice(batch.length);
        await send(batch);
      }
      sending = false;
    };

    return (message) =>
      new Promise<void>((done) => {
        queued.push({ message, done });
        if (!sending) void flush();
      });
  }

  return { completer };
}
