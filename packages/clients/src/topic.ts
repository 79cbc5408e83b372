import type { Readable } from 'node:stream';
import type { AxiosResponse } from 'axios';
import {
  type PeekedBatch,
  type ReceivedAndDeleted,
  type ReceivedMessage,
  topicRoutes,
  type Batch,
  type CompletedLocks,
  type CompleteLocks,
  type DeadLetterMessage,
  type ForwardedSettle,
  type ReplayRequest,
} from '@keyway/contracts';
import { createHttp, toApiError, UnreachableError, type ClientOptions } from './http.ts';
import { routeCaller } from './route.ts';
import { lines, streamedMessage, type StreamedMessage } from './stream-line.ts';

export type { StreamedMessage } from './stream-line.ts';

export interface StreamOptions {
  /** messages locked and unsettled at once (1..500; server default 50) */
  prefetch?: number;
  /** seconds the stream stays open (1..300; server default 60) */
  timeoutSec?: number;
  /** aborting ends the iteration and closes the stream; the server then returns every unsettled message to the queue */
  signal?: AbortSignal;
}

const STREAM_DEFAULT_TIMEOUT_SEC = 60;
/** how long past its timeout a stream may take to end before the connection is taken for dead */
const STREAM_GRACE_SEC = 30;

/** the ApiError for a streamed answer that is not 200 (its body is an ordinary error body) */
async function refusal(response: AxiosResponse, body: Readable): Promise<Error> {
  let text = '';
  try {
    body.setEncoding('utf8');
    for await (const chunk of body) text += chunk as string;
  } catch (err) {
    return new UnreachableError('topic', (err as { code?: string }).code);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // not JSON: toApiError reports the status alone
  }
  return toApiError({ ...response, data });
}

export function topicClient(options: ClientOptions) {
  const { call, exchange } = routeCaller(createHttp({ ...options, timeoutMs: options.timeoutMs ?? 75_000 }), 'topic', options.dpop);
  // with DPoP, the proof names the SAS key as sent (ath)
  const auth = (sasKey: string) => ({ headers: { authorization: sasKey }, dpopCredential: sasKey });
  /** peek-lock receive from an entity (subscription or its dead-letter queue); null when nothing arrived */
  const receiveFrom =
    (route: typeof topicRoutes.receive) =>
    async (sasKey: string, tenant: string, topic: string, sub: string, timeoutSec: number, signal?: AbortSignal): Promise<ReceivedMessage | null> =>
      (await call(route, { params: { tenant, topic, subscription: sub }, query: { timeout: timeoutSec } }, { ...auth(sasKey), signal })) ?? null;
  /** receive and delete (at most once: the message is gone before it reaches the caller); null when nothing arrived */
  const receiveAndDeleteFrom =
    (route: typeof topicRoutes.receiveAndDelete) =>
    async (sasKey: string, tenant: string, topic: string, sub: string, timeoutSec: number, signal?: AbortSignal): Promise<ReceivedAndDeleted | null> =>
      (await call(route, { params: { tenant, topic, subscription: sub }, query: { timeout: timeoutSec } }, { ...auth(sasKey), signal })) ?? null;
  /** up to `count` (1..100, server default 10) of the next messages, neither locked nor counted */
  const peekAt =
    (route: typeof topicRoutes.peek) =>
    async (sasKey: string, tenant: string, topic: string, sub: string, count?: number): Promise<PeekedBatch[]> =>
      (await call(route, { params: { tenant, topic, subscription: sub }, query: { count } }, auth(sasKey))).messages;
  /** complete, abandon and renew a lock, and complete many, on the subscription's or its dead-letter queue's settle routes */
  const settlers = (routes: { complete: typeof topicRoutes.complete; abandon: typeof topicRoutes.abandon; renewLock: typeof topicRoutes.renewLock; completeMany: typeof topicRoutes.completeMany }) => {
    const request = (tenant: string, topic: string, sub: string, id: string, lockToken: string) => ({ params: { tenant, topic, subscription: sub, id, lockToken } });
    const settle = (route: typeof topicRoutes.complete | typeof topicRoutes.abandon) => async (sasKey: string, tenant: string, topic: string, sub: string, id: string, lockToken: string) => {
      await call(route, request(tenant, topic, sub, id, lockToken), auth(sasKey));
    };
    // renewLock answers the new locked_until: a consumer holding a batch long needs it to renew again in time
    const renew = async (sasKey: string, tenant: string, topic: string, sub: string, id: string, lockToken: string) => call(routes.renewLock, request(tenant, topic, sub, id, lockToken), auth(sasKey));
    /**
     * Completes up to 500 locks in one request: each entry's outcome in request order, `lock_lost`
     * for one that did not complete (the others still did); throws only when the whole request fails.
     */
    const completeMany = async (sasKey: string, tenant: string, topic: string, sub: string, locks: CompleteLocks['locks']): Promise<CompletedLocks['results']> =>
      (await call(routes.completeMany, { params: { tenant, topic, subscription: sub }, body: { locks } }, auth(sasKey))).results;
    return { complete: settle(routes.complete), abandon: settle(routes.abandon), renewLock: renew, completeMany };
  };

  /**
   * Streaming peek-lock receive: each message is locked with its own token and settled with
   * complete / abandon / renewLock as usual; settling gives the stream credit for the next one.
   * Ends when the server ends the stream (after timeoutSec) or when the signal aborts; throws
   * ApiError for a refusal or a failure the server reports, UnreachableError when the connection breaks.
   */
  async function* stream(sasKey: string, tenant: string, topic: string, sub: string, streamOptions: StreamOptions = {}): AsyncGenerator<StreamedMessage> {
    const { prefetch, timeoutSec, signal } = streamOptions;
    // No idle timeout (a consumer may take its time between messages); the whole stream is bounded instead.
    const deadline = AbortSignal.timeout(((timeoutSec ?? STREAM_DEFAULT_TIMEOUT_SEC) + STREAM_GRACE_SEC) * 1000);
    const abort = signal ? AbortSignal.any([signal, deadline]) : deadline;
    let response: AxiosResponse<Readable>;
    try {
      response = await exchange(
        topicRoutes.stream,
        { params: { tenant, topic, subscription: sub }, query: { prefetch, timeout: timeoutSec } },
        { ...auth(sasKey), signal: abort, responseType: 'stream', timeout: 0 },
      );
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
    const body = response.data;
    /** the next line; undefined at the end; UnreachableError when the connection breaks */
    const chunks = lines(body);
    const next = async (): Promise<Buffer | undefined> => {
      try {
        const result = await chunks.next();
        return result.done ? undefined : result.value;
      } catch (err) {
        throw new UnreachableError('topic', (err as { code?: string }).code);
      }
    };
    try {
      if (response.status !== 200) throw await refusal(response, body);
      for (let line = await next(); line !== undefined; line = await next()) {
        if (line.length === 0) continue; // heartbeat
        yield streamedMessage(line);
      }
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    } finally {
      body.destroy();
    }
  }

  return {
    publish: (sasKey: string, batch: Batch) => call(topicRoutes.publish, { params: { tenant: batch.tenant, topic: batch.topic }, body: batch }, auth(sasKey)),
    /** internal (mTLS, audit service only): publish as Keyway itself, through the same checks and quotas as `publish` */
    publishInternal: (batch: Batch) => call(topicRoutes.publishInternal, { params: { tenant: batch.tenant, topic: batch.topic }, body: batch }),
    /** internal (mTLS, topic service only): settle a lock the instance at baseUrl holds; ApiError 410 lock_lost when it holds no such lock */
    settleForwarded: (lockToken: string, settle: ForwardedSettle) => call(topicRoutes.settleForwarded, { params: { lockToken }, body: settle }),
    /** internal (mTLS, entitlement service only): declare a subscription's queues now; with `startAt`, also replay into it the batches retained since then */
    declareSubscription: (tenant: string, topic: string, subscription: string, options: { startAt?: string } = {}) =>
      call(topicRoutes.declareSubscription, { params: { tenant, topic, subscription }, body: options.startAt === undefined ? undefined : { start_at: options.startAt } }),
    /** internal (mTLS, entitlement service only): delete the topic's replay stream with what it retains (a feed removed from the tenant); idempotent */
    deleteStream: async (tenant: string, topic: string): Promise<void> => {
      await call(topicRoutes.deleteStream, { params: { tenant, topic } });
    },
    /**
     * Replays the topic's retained batches into the subscription from a time (published at or after it)
     * or a stream offset (inclusive): the replay's first status; it goes on in the background.
     */
    replay: (sasKey: string, tenant: string, topic: string, sub: string, from: { fromTime?: Date | string; fromOffset?: number }) =>
      call(
        topicRoutes.replay,
        {
          params: { tenant, topic, subscription: sub },
          body: { ...(from.fromTime !== undefined && { from_time: new Date(from.fromTime).toISOString() }), ...(from.fromOffset !== undefined && { from_offset: from.fromOffset }) },
        },
        auth(sasKey),
      ),
    /** a replay's status as it goes; ApiError 404 replay_not_found when there is no such replay */
    replayStatus: (sasKey: string, tenant: string, topic: string, sub: string, replayId: string) =>
      call(topicRoutes.replayStatus, { params: { tenant, topic, subscription: sub, replayId } }, auth(sasKey)),
    /** peek-lock receive; null when nothing arrived within timeoutSec */
    receive: receiveFrom(topicRoutes.receive),
    receiveAndDelete: receiveAndDeleteFrom(topicRoutes.receiveAndDelete),
    peek: peekAt(topicRoutes.peek),
    stream,
    ...settlers(topicRoutes),
    /** settle: moves a locked message to the dead-letter queue with a reason (default DeadLetteredByReceiver) and description */
    deadLetterMessage: async (sasKey: string, tenant: string, topic: string, sub: string, id: string, lockToken: string, why: DeadLetterMessage = {}) => {
      await call(topicRoutes.deadLetterMessage, { params: { tenant, topic, subscription: sub, id, lockToken }, body: why }, auth(sasKey));
    },
    /** internal (mTLS, entitlement service only): resubmit dead letters for an operator; answers how many */
    resubmitDeadLettersInternal: async (tenant: string, topic: string, subscription: string, max?: number): Promise<number> =>
      (await call(topicRoutes.resubmitDeadLettersInternal, { params: { tenant, topic, subscription }, body: max === undefined ? {} : { max } })).resubmitted,
    /** internal (mTLS, entitlement service only): start a replay for an operator; the replay's first status */
    replayInternal: (tenant: string, topic: string, subscription: string, request: ReplayRequest) => call(topicRoutes.replayInternal, { params: { tenant, topic, subscription }, body: request }),
    /** internal (mTLS, entitlement service only): a replay's status; ApiError 404 replay_not_found when there is none */
    replayStatusInternal: (tenant: string, topic: string, subscription: string, replayId: string) => call(topicRoutes.replayStatusInternal, { params: { tenant, topic, subscription, replayId } }),
    /** the subscription's dead-letter queue (`$deadletterqueue`): receive and settle the same way */
    deadLetter: {
      receive: receiveFrom(topicRoutes.deadLetterReceive),
      /** moves up to `max` (default 100) dead letters back to the subscription, oldest first; answers how many */
      resubmit: async (sasKey: string, tenant: string, topic: string, sub: string, max?: number): Promise<number> =>
        (await call(topicRoutes.resubmitDeadLetters, { params: { tenant, topic, subscription: sub }, body: max === undefined ? {} : { max } }, auth(sasKey))).resubmitted,
      receiveAndDelete: receiveAndDeleteFrom(topicRoutes.deadLetterReceiveAndDelete),
      peek: peekAt(topicRoutes.deadLetterPeek),
      ...settlers({
        complete: topicRoutes.deadLetterComplete,
        abandon: topicRoutes.deadLetterAbandon,
        renewLock: topicRoutes.deadLetterRenewLock,
        completeMany: topicRoutes.deadLetterCompleteMany,
      }),
    },
  };
}
export type TopicClient = ReturnType<typeof topicClient>;
