import { DEFAULT_DEAD_LETTER_REASON, type ForwardedSettle, type ForwardedSettleAnswer } from '@keyway/contracts';
import { ApiError, UnreachableError } from '@keyway/clients';
import { OAuthError, TemporarilyUnavailable, type Logger } from '@keyway/kit';
import { setBounded } from '../bounded-cache.ts';
import { RETRY_AFTER_SEC } from './broker-errors.ts';
import type { InstanceRegistry } from './instances.ts';
import { instanceOf, LockLost, type LockScope, type LockTable } from './locks.ts';

export type SettleAction = ForwardedSettle['action'];
/** a dead-letter's reason and description (action `deadletter`) */
export type DeadLetterReason = Pick<ForwardedSettle, 'reason' | 'description'>;

/** Another topic instance, reached at the URL it listed, with this service's own client certificate. */
export interface Peer {
  settleForwarded(lockToken: string, settle: ForwardedSettle): Promise<ForwardedSettleAnswer>;
}

/** instances a process talks to at once; a bound so that a churning fleet does not grow it without end */
const MAX_PEERS = 256;
/** settles of one batch complete passed on at once: a batch of 500 foreign locks opens no 500 connections */
const FORWARDS_AT_ONCE = 16;

/** a lock a client names, and what its path says it is for */
interface HeldLock {
  token: string;
  scope: LockScope;
}
/** one lock of a batch complete: completed, or not (as a single complete's 410), with why for the log */
type CompleteOutcome = { completed: true } | { completed: false; detail: string | undefined };

/** `fn` over `items`, at most `limit` at once; the results in the items' order */
export async function inParallel<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Any instance settles any lock (issue 12). The lock token names the instance holding the AMQP
 * delivery: a settle for one of ours is done here, any other is passed on over mTLS to the URL that
 * instance listed. A passed-on settle is settled there or lost, never passed on again, so a stale
 * listing cannot make a loop. An instance that is not listed or does not answer has lost its locks
 * (Azure Service Bus MessageLockLost): RabbitMQ redelivers its deliveries once its channel closes.
 */
export function lockSettler(deps: { locks: LockTable; instances: Pick<InstanceRegistry, 'id' | 'urlOf'>; peer: (baseUrl: string) => Peer; logger: Logger }) {
  const { locks, instances, logger } = deps;
  const peers = new Map<string, Peer>();
  const peerAt = (url: string): Peer => {
    let peer = peers.get(url);
    if (!peer) {
      peer = deps.peer(url);
      setBounded(peers, url, peer, MAX_PEERS);
    }
    return peer;
  };

  /** the lock deadline after a renew, else undefined */
  const settleHere = async (action: SettleAction, token: string, scope: LockScope, why: DeadLetterReason = {}): Promise<number | undefined> => {
    if (instanceOf(token) !== instances.id) throw new LockLost('the lock token names another instance');
    if (action === 'renew') return locks.renew(token, scope);
    if (action === 'deadletter') await locks.deadLetter(token, scope, why.reason ?? DEFAULT_DEAD_LETTER_REASON, why.description ?? '');
    else await (action === 'complete' ? locks.complete(token, scope) : locks.abandon(token, scope));
    return undefined;
  };

  /** a settle for the instance listed at `url` (undefined: not listed) */
  const forward = async (instance: string, url: string | undefined, action: SettleAction, token: string, scope: LockScope, why: DeadLetterReason = {}): Promise<number | undefined> => {
    if (url === undefined) throw new LockLost(`instance ${instance} is not listed (gone, or never existed)`);
    try {
      const answer = await peerAt(url).settleForwarded(token, { action, ...scope, ...why });
      return answer.locked_until === undefined ? undefined : Date.parse(answer.locked_until);
    } catch (err) {
      if (err instanceof ApiError && err.status === 410) throw new LockLost(`instance ${instance}: ${err.description}`);
      if (err instanceof UnreachableError) {
        logger.warn('lock.holder_unreachable', { instance, err });
        throw new LockLost(`instance ${instance} does not answer`);
      }
      logger.error('lock.pass_on_failed', { instance, err });
      throw new TemporarilyUnavailable('the lock cannot be settled right now, retry later', `instance ${instance}: ${String(err)}`, { 'Retry-After': String(RETRY_AFTER_SEC) });
    }
  };

  const passOn = async (action: SettleAction, token: string, scope: LockScope, why: DeadLetterReason): Promise<number | undefined> => {
    const instance = instanceOf(token);
    // a store outage rejects here: 503, since whether the instance lives cannot be told
    return forward(instance, await instances.urlOf(instance), action, token, scope, why);
  };

  /**
   * A batch complete: each lock completed where it is held, the others' passed on (FORWARDS_AT_ONCE
   * at a time). The holders are looked up first, so a store outage fails the whole request (503)
   * before any lock is touched; after that a lock that does not complete is that entry's outcome
   * alone. A holder that answers an error is reported lost too: that lock is not completed and its
   * message comes back when the lock ends, which is all a client can act on.
   */
  const completeMany = async (held: readonly HeldLock[]): Promise<CompleteOutcome[]> => {
    const foreign = [...new Set(held.map(({ token }) => instanceOf(token)))].filter((instance) => instance !== instances.id);
    const urls = new Map(await Promise.all(foreign.map(async (instance) => [instance, await instances.urlOf(instance)] as const)));
    return inParallel(held, FORWARDS_AT_ONCE, async ({ token, scope }): Promise<CompleteOutcome> => {
      const instance = instanceOf(token);
      try {
        await (instance === instances.id ? settleHere('complete', token, scope) : forward(instance, urls.get(instance), 'complete', token, scope));
        return { completed: true };
      } catch (err) {
        if (err instanceof OAuthError) return { completed: false, detail: err.detail };
        throw err;
      }
    });
  };

  return {
    /** a settle a client asked for, on any instance (`why`: a dead-letter's reason and description) */
    settle: (action: SettleAction, token: string, scope: LockScope, why: DeadLetterReason = {}): Promise<number | undefined> =>
      instanceOf(token) === instances.id ? settleHere(action, token, scope, why) : passOn(action, token, scope, why),
    /** a settle another instance passed on: this instance holds the lock, or it is lost */
    settleHere,
    completeMany,
  };
}
export type LockSettler = ReturnType<typeof lockSettler>;
