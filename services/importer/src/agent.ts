import { setTimeout as sleep } from 'node:timers/promises';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { ApiError, type PacClient, type PasClient, type StreamedMessage, type TopicClient } from '@keyway/clients';
import type { ReceivedMessage } from '@keyway/contracts';
import type { Logger } from '@keyway/kit';
import { memoryCheckpoint, type Checkpoint } from './checkpoint.ts';
import { completions, type CompleteOutcome } from './completions.ts';
import { SasKeeper, type TopicAddress } from './credentials/sas.ts';
import { Session, type Credentials } from './credentials/session.ts';
import { importerMetrics, type Feed } from './metrics.ts';
import type { ReplayMarker } from './replay-marker.ts';
import type { Sink } from './sinks/sink.ts';

/** stream: one long response with up to `prefetch` batches locked ahead of the sink; receive: one long poll, one batch at a time */
export const PULL_MODES = ['stream', 'receive'] as const;
type PullMode = (typeof PULL_MODES)[number];

export const DEFAULT_PREFETCH = 50;
export const DEFAULT_STREAM_TIMEOUT_SEC = 60;

export interface AgentOptions {
  credentials: Credentials;
  /** topic URI to ask PAC for; unset = the tenant's feed */
  resource?: string;
  subscription: string;
  /** default stream */
  pull?: PullMode;
  /** pull=receive: the long poll's wait */
  receiveTimeoutSec: number;
  /** pull=stream: batches locked and not yet settled at once (the stream's credit) */
  prefetch?: number;
  /** pull=stream: how long each stream stays open; the next one is opened at once */
  streamTimeoutSec?: number;
  /** ISO time: at the start, unless `replayMarker` says it was done, the feed's batches retained since then are replayed into the subscription */
  replayFrom?: string;
}

export interface AgentDeps {
  pas: PasClient;
  pac: PacClient;
  topic: TopicClient;
  sink: Sink;
  /** ids already written; unset = kept in memory only (duplicates are dropped until the agent stops) */
  checkpoint?: Checkpoint;
  /** the REPLAY_FROM last replayed; unset = each start with `replayFrom` replays */
  replayMarker?: ReplayMarker;
  logger: Logger;
  now?: () => number;
}

/** What a probe sees (the health endpoint, bench, tests). */
export interface AgentHealth {
  /** pulling works: no failure, or failures for less than a stream's length and a back-off */
  healthy: boolean;
  /** the feed, once a SAS key named it */
  tenant?: string;
  topic?: string;
  subscription: string;
  /** ISO time the sink last said a batch was durable */
  lastDurableWrite?: string;
  /** batches received and not yet settled (being written, or queued for the sink) */
  behind: number;
  written: number;
  duplicatesDropped: number;
  lockRenewals: number;
  locksLost: number;
  errors: number;
}

const MAX_BACKOFF_MS = 10_000;
/** a lock is renewed when half of it is left, and at least every 30 s (whatever the server's clock says) */
const MIN_RENEW_MS = 1000;
const MAX_RENEW_MS = 30_000;
/** what a SAS key must have left when a stream ends: the settles of its last batches */
const SETTLE_MARGIN_SEC = 30;
/** stands for "the agent is stopping" where a queued batch is not written */
const STOPPING = Symbol('stopping');
/** how often a REPLAY_FROM replay is checked until it completes */
const REPLAY_POLL_MS = 2000;

type SettleArgs = readonly [sasKey: string, tenant: string, topic: string, subscription: string, messageId: string, lockToken: string];

/**
 * The importer: runs the chain unattended (login → SAS key → receive → write → complete) and keeps
 * its credentials fresh. By default it holds a stream open and pipelines: batches are written one
 * after the other in the order they were delivered while the next ones arrive, and each is completed
 * only after its own write is durable (and checkpointed); completes ready at once share one request.
 * A batch whose write fails is abandoned, so it is delivered again; the batches queued behind it are
 * abandoned unwritten, the stream is dropped and pulling resumes after a back-off. While a batch
 * waits for or is in a slow write its lock is renewed; a lost lock (410, or lock_lost in a batch
 * complete) is let go: the batch comes back and the checkpoint drops it.
 */
export function createAgent(options: AgentOptions, deps: AgentDeps) {
  const log = deps.logger;
  const now = deps.now ?? Date.now;
  const pull = options.pull ?? 'stream';
  const prefetch = options.prefetch ?? DEFAULT_PREFETCH;
  const streamTimeoutSec = options.streamTimeoutSec ?? DEFAULT_STREAM_TIMEOUT_SEC;
  // made with the agent, after the process registered its MeterProvider (no-ops before)
  const metrics = importerMetrics(options.subscription);
  const session = new Session(deps.pas, options.credentials, log, metrics.credentialRenewed, deps.now);
  const keyMustLastSec = pull === 'stream' ? SETTLE_MARGIN_SEC : options.receiveTimeoutSec + 5;
  const sas = new SasKeeper(deps.pac, session, options.resource, log, metrics.credentialRenewed, keyMustLastSec * 1000, deps.now);
  const checkpoint = deps.checkpoint ?? memoryCheckpoint();
  const counts = { written: 0, duplicatesDropped: 0, errors: 0, lockRenewals: 0, locksLost: 0 };
  const unhealthyAfterMs = (pull === 'stream' ? streamTimeoutSec * 1000 : options.receiveTimeoutSec * 1000) + 2 * MAX_BACKOFF_MS;
  const abort = new AbortController();
  /** stop() was called: nothing new is taken or written, what is being written is finished */
  let stopping = false;
  let loop: Promise<void> | undefined;
  /** the REPLAY_FROM replay being watched until it completes */
  let watching: Promise<void> | undefined;
  /** the batches-pending gauge's callback, registered while the agent runs */
  let pendingGauge: { close(): void } | undefined;

  let address: TopicAddress | undefined;
  let lastDurableWriteAt: number | undefined;
  /** when pulling started to fail; cleared by the next batch or stream that ends well */
  let failingSince: number | undefined;
  /** every batch received and not settled yet */
  const pending = new Set<Promise<void>>();
  /** ids on their way to the sink: a redelivery meanwhile waits for that write instead of writing again */
  const writing = new Map<string, Promise<void>>();
  /** the last write queued: writes start in delivery order, each after the one before it */
  let lastWrite: Promise<unknown> = Promise.resolve();
  /**
   * The checkpoint of the batch before the last one written: a write waits for it, so a batch's
   * checkpoint append overlaps the next write only, and a crash leaves at most two batches written
   * but not checkpointed (the ones a restart may write again), however slow the checkpoint file is.
   */
  let recordedBeforeLast: Promise<unknown> = Promise.resolve();
  let lastRecorded: Promise<unknown> = Promise.resolve();
  /** the write that failed: what is queued behind it is not written, and pulling pauses */
  let writeFailure: unknown;
  /** the open stream, dropped when a write fails */
  let current: AbortController | undefined;

  const stats = {
    get written() {
      return counts.written;
    },
    get duplicatesDropped() {
      return counts.duplicatesDropped;
    },
    get errors() {
      return counts.errors;
    },
    get lockRenewals() {
      return counts.lockRenewals;
    },
    get locksLost() {
      return counts.locksLost;
    },
    get logins() {
      return session.counts.logins;
    },
    get refreshes() {
      return session.counts.refreshes;
    },
    get sasKeys() {
      return sas.obtained;
    },
  };

  const failing = () => {
    failingSince ??= now();
  };

  async function write(message: StreamedMessage): Promise<void> {
    if (writeFailure !== undefined) throw writeFailure;
    if (stopping) throw STOPPING;
    const started = performance.now();
    try {
      await deps.sink.write(message.batch, message.batchJson);
    } catch (err) {
      metrics.writeFailed(message.batch);
      writeFailure ??= err;
      current?.abort();
      log.error('sink write failed; abandoning the batch', { batchId: message.batch.id, err });
      throw err;
    }
    counts.written += 1;
    lastDurableWriteAt = now();
    metrics.written(message.batch, message.batch.records.length, (performance.now() - started) / 1000, message.batch.createdAt);
  }

  /** after the batch's write: its id, durably, while the next batch is written */
  async function record(id: string): Promise<void> {
    // The batch is durable in the sink, so it is completed even when the checkpoint cannot be
    // written: abandoning it would only write it twice. What is lost is the protection against a
    // redelivery after a crash before the complete (this process still remembers the id).
    await checkpoint.record(id).catch((err: unknown) => {
      counts.errors += 1;
      log.error('checkpoint write failed; the batch is completed anyway', { batchId: id, err });
    });
  }

  /** Renews the lock until the returned function is called; a lost lock is let go. */
  function keepLocked(settle: SettleArgs, lockedUntil: string, feed: Feed, batchId: string): () => void {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const schedule = (until: string) => {
      if (done) return;
      const delay = Math.min(Math.max((Date.parse(until) - now()) / 2, MIN_RENEW_MS), MAX_RENEW_MS);
      timer = setTimeout(renew, delay);
    };
    const renew = () => {
      deps.topic.renewLock(...settle).then(
        (answer) => {
          counts.lockRenewals += 1;
          metrics.lockRenewed(feed);
          schedule(answer.locked_until);
        },
        (err: unknown) => {
          if (done) return;
          if (err instanceof ApiError && err.code === 'lock_lost') {
            counts.locksLost += 1;
            metrics.lockLost(feed);
            log.warn('lock lost while the batch waits for the sink; it comes back and is dropped as a duplicate', { batchId });
            return;
          }
          counts.errors += 1;
          log.warn('lock renewal failed; trying again', { batchId, err });
          schedule(new Date(now()).toISOString());
        },
      );
    };
    schedule(lockedUntil);
    return () => {
      done = true;
      clearTimeout(timer);
    };
  }

  /** A lost lock is let go: the batch comes back and is dropped as a duplicate; so is one whose complete failed. */
  const settled = (message: ReceivedMessage, outcome: CompleteOutcome): void => {
    if (outcome === 'completed') failingSince = undefined;
    else if (outcome === 'lock_lost') {
      counts.locksLost += 1;
      metrics.lockLost(message.batch);
      log.warn('lock lost before completion', { batchId: message.batch.id });
    } else {
      if (outcome.failed instanceof ApiError && outcome.failed.status === 401) sas.invalidate();
      counts.errors += 1;
      log.warn('complete failed; the batch comes back and is dropped as a duplicate', { batchId: message.batch.id, err: outcome.failed });
    }
  };
  const { completer } = completions({ topic: deps.topic, subscription: options.subscription, log });

  /** Takes a delivered batch into the pipeline; settled in the background, tracked in `pending`. */
  function take(message: StreamedMessage, sasKey: string, at: TopicAddress, complete: (message: ReceivedMessage) => Promise<void>): void {
    const id = message.batch.id;
    const settle: SettleArgs = [sasKey, at.tenant, at.topic, options.subscription, message.message_id, message.lock_token];
    const stopRenewing = keepLocked(settle, message.locked_until, at, id);
    let durable: Promise<void>;
    const earlier = writing.get(id);
    if (earlier !== undefined || checkpoint.has(id)) {
      counts.duplicatesDropped += 1;
      metrics.duplicateDropped(at);
      durable = earlier ?? Promise.resolve();
    } else {
      const written = Promise.all([lastWrite, recordedBeforeLast]).then(() => write(message));
      lastWrite = written.catch(() => undefined);
      durable = written.then(() => record(id));
      recordedBeforeLast = lastRecorded;
      lastRecorded = durable.catch(() => undefined);
      writing.set(id, durable);
      const forget = () => writing.delete(id);
      durable.then(forget, forget);
    }
    const settled = durable
      .then(
        () => complete(message),
        // not written: back to the queue now rather than at lock expiry (a lock the stream's end released
        // answers 410); when stopping, closing the stream releases them all at once instead
        (err: unknown) =>
          err === STOPPING
            ? undefined
            : deps.topic.abandon(...settle).then(
                () => undefined,
                () => undefined,
              ),
      )
      .finally(() => {
        stopRenewing();
        pending.delete(settled);
      });
    pending.add(settled);
  }

  /** waits until every batch received so far is settled */
  async function drain(): Promise<void> {
    while (pending.size > 0) await Promise.all(pending);
  }

  /** After a failed write: the batches behind it are settled, then the failure is the pull's. */
  async function throwWriteFailure(): Promise<void> {
    if (writeFailure === undefined) return;
    await drain();
    const err = writeFailure;
    writeFailure = undefined;
    throw err;
  }

  async function streamOnce(): Promise<void> {
    // a failure the last stream left (its batches abandoned meanwhile) pauses pulling first, so a
    // broken sink does not spend the deliveries of a new stream's batches too
    await throwWriteFailure();
    // What earlier streams handed out and is not settled yet counts against the credit: a sink
    // slower than a stream's length never holds more than `prefetch` batches.
    while (pending.size >= prefetch) await Promise.race(pending);
    // A stream may outlast the refresh token's renewal window while its SAS key is still good: the
    // session is renewed between streams, so the refresh family stays alive without a new login.
    const refreshAt = session.renewAt;
    if (refreshAt !== undefined && now() >= refreshAt) await session.refreshToken();
    const { sasKey, address: at, renewAt } = await sas.key();
    address = at;
    // ends when the key or the session is due for renewal, so the next stream opens with fresh ones
    // rather than this one being cut when the key expires
    const until = Math.min(renewAt, session.renewAt ?? renewAt);
    const stream = new AbortController();
    current = stream;
    const complete = completer(sasKey, at, settled);
    try {
      const messages = deps.topic.stream(sasKey, at.tenant, at.topic, options.subscription, {
        prefetch: prefetch - pending.size,
        timeoutSec: Math.max(1, Math.min(streamTimeoutSec, Math.floor((until - now()) / 1000))),
        signal: AbortSignal.any([abort.signal, stream.signal]),
      });
      for await (const message of messages) {
        // not taken: the stream's end, just after, releases its lock
        if (!stopping) take(message, sasKey, at, complete);
      }
    } finally {
      current = undefined;
    }
    await throwWriteFailure();
    failingSince = undefined;
  }

  async function receiveOnce(): Promise<void> {
    const { sasKey, address: at } = await sas.key();
    address = at;
    const message = await deps.topic.receive(sasKey, at.tenant, at.topic, options.subscription, options.receiveTimeoutSec, abort.signal);
    failingSince = undefined;
    if (!message) return;
    take(message, sasKey, at, completer(sasKey, at, settled));
    await drain();
    await throwWriteFailure();
  }

  /**
   * One trace per stream or long poll: the login or refresh at PAS, the SAS key from PAC and the
   * topic calls it needed share its trace id (a trace for the whole run would last for months).
   */
  const tracer = trace.getTracer('keyway-importer');
  const traced = (pullOnce: () => Promise<void>) => () =>
    tracer.startActiveSpan(`importer.${pull}`, async (span) => {
      try {
        await pullOnce();
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
        throw err;
      } finally {
        span.end();
      }
    });

  /**
   * REPLAY_FROM, once per value, until its replay completed: the checkpoint is cleared first (it would
   * drop the replayed batches as redeliveries; the overlap of the replay with what the queue still holds
   * is then dropped once), the replay asked for and its id recorded before anything else, then watched
   * in the background (the copies need the agent to receive meanwhile). A restart with the same value
   * watches the recorded replay again; only a completed one is marked done.
   */
  async function replayOnce(from: string): Promise<void> {
    const last = await deps.replayMarker?.replayed();
    const same = last !== undefined && Date.parse(last.from) === Date.parse(from);
    if (same && last.done) return;
    let replayId: string;
    if (same) replayId = last.replayId;
    else {
      await checkpoint.clear();
      replayId = await askReplay(from, { fromTime: from });
    }
    watching = watchReplay(from, replayId);
  }

  /** asks for a replay into the subscription and records its id (not done): its id */
  async function askReplay(from: string, start: { fromTime?: string; fromOffset?: number }): Promise<string> {
    const { sasKey, address: at } = await sas.key();
    address = at;
    const replay = await deps.topic.replay(sasKey, at.tenant, at.topic, options.subscription, start);
    log.info('replay requested', { replayId: replay.replay_id, from, ...start, tenant: at.tenant, topic: at.topic, subscription: options.subscription });
    await deps.replayMarker?.record({ from, replayId: replay.replay_id, done: false });
    return replay.replay_id;
  }

  /**
   * Polls the replay until it completed, then marks REPLAY_FROM done. One that stopped short
   * (interrupted, failed) is asked again from its last offset + 1 (from the time when it copied
   * nothing); one whose record is gone (404) is asked again from the time.
   */
  async function watchReplay(from: string, id: string): Promise<void> {
    let replayId = id;
    while (!stopping) {
      try {
        const { sasKey, address: at } = await sas.key();
        const status = await deps.topic.replayStatus(sasKey, at.tenant, at.topic, options.subscription, replayId);
        if (status.status === 'completed') {
          await deps.replayMarker?.record({ from, replayId, done: true });
          log.info('replay completed', { replayId, copied: status.copied });
          return;
        }
        if (status.status !== 'running') {
          log.warn('replay stopped short; asking again from where it stopped', { replayId, status: status.status, error: status.error, lastOffset: status.last_offset });
          replayId = await askReplay(from, status.last_offset === undefined ? { fromTime: from } : { fromOffset: status.last_offset + 1 });
        }
      } catch (err) {
        if (stopping) return;
        if (err instanceof ApiError && err.status === 404) {
          log.warn('replay no longer known; asking again from the time', { replayId });
          replayId = await askReplay(from, { fromTime: from }).catch(() => replayId);
        } else log.warn('replay status check failed; retrying', { replayId, err });
      }
      await sleep(REPLAY_POLL_MS, undefined, { signal: abort.signal }).catch(() => undefined);
    }
  }

  async function run(): Promise<void> {
    const pullOnce = traced(pull === 'stream' ? streamOnce : receiveOnce);
    let replayFrom = options.replayFrom;
    let backoffMs = 250;
    while (!stopping) {
      try {
        if (replayFrom !== undefined) {
          await replayOnce(replayFrom);
          replayFrom = undefined;
        }
        await pullOnce();
        backoffMs = 250;
      } catch (err) {
        if (stopping) break;
        failing();
        counts.errors += 1;
        if (err instanceof ApiError && err.status === 401) sas.invalidate();
        log.warn('pull failed; retrying', { err, backoffMs });
        await sleep(backoffMs, undefined, { signal: abort.signal }).catch(() => undefined);
        backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
      }
    }
  }

  return {
    stats,
    health(): AgentHealth {
      return {
        healthy: loop !== undefined && !stopping && (failingSince === undefined || now() - failingSince < unhealthyAfterMs),
        tenant: address?.tenant,
        topic: address?.topic,
        subscription: options.subscription,
        lastDurableWrite: lastDurableWriteAt === undefined ? undefined : new Date(lastDurableWriteAt).toISOString(),
        behind: pending.size,
        ...counts,
      };
    },
    start(): void {
      pendingGauge ??= metrics.observePending(() => ({ feed: address, batches: pending.size }));
      loop ??= run();
    },
    /**
     * Stops pulling: a batch in the middle of its write finishes, is checkpointed and completed
     * (batches queued behind it are not written); then the stream or long poll is closed, which
     * returns the unwritten ones to the queue (closing it first would also release the lock of the
     * batch being written), and the sink and the checkpoint are closed.
     */
    async stop(): Promise<void> {
      stopping = true;
      await drain();
      abort.abort();
      await loop;
      await watching;
      await drain();
      await deps.sink.close();
      await checkpoint.close();
      pendingGauge?.close();
    },
  };
}
export type Agent = ReturnType<typeof createAgent>;
