import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { BrokerUnavailableError, NoSubscriptionError, ReplayStalledError, type Broker, type ReplayResult, type ReplayStart, type TopicRef } from '@keyway/broker';
import { InvalidRequest, TooManyRequests, type Logger } from '@keyway/kit';
import { ReplayStatus, type ReplayRequest } from '@keyway/contracts';
import type { Store } from '@keyway/store';
import type { FeedPolicies } from './policy.ts';

/** how long a replay's status can be asked for */
const KEEP_MS = 7 * 86_400_000;
/** a running replay's record is written at least this often, so other instances see its instance is alive */
const REFRESH_MS = 10_000;
/** a running record not refreshed for this long belongs to an instance that died: it reads `interrupted` */
const STALE_MS = 3 * REFRESH_MS;
/** progress is written at most this often (a replay copies thousands of batches a second) */
const PROGRESS_WRITE_MS = 1000;
/** replays running at once per subscription, over all instances */
const MAX_RUNNING_REPLAYS = 3;

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

/** what the store holds: the status, and when its instance last wrote it */
const StoredReplay = ReplayStatus.extend({ refreshed_at: z.number() });
type StoredReplay = z.infer<typeof StoredReplay>;

interface Job {
  abort: AbortController;
  done: Promise<void>;
}

/**
 * Replays (issue 16): each copies the topic's retained batches into one subscription in the
 * background on the instance that started it (broker.replay). Its status lives in the shared store,
 * so any instance answers for it: written as the copy goes (throttled), and refreshed while it runs, so
 * a record left `running` by an instance that died reads `interrupted`. close() aborts this instance's
 * replays and records them `interrupted` with the last offset copied, to be asked again from there.
 */
export function replayJobs(deps: { broker: Broker; store: Store; policies: FeedPolicies; logger: Logger; now: () => number }) {
  const { broker, store, policies, logger, now } = deps;
  const jobs = new Map<string, Job>();
  // tenant and topic names are slugs and subscription names have no ':', so the keys cannot collide
  const recordKey = (topic: TopicRef, subscription: string, id: string) => `replays:${topic.tenant}:${topic.topic}:${subscription}:${id}`;
  const runningKey = (topic: TopicRef, subscription: string) => `replays-running:${topic.tenant}:${topic.topic}:${subscription}`;

  const read = async (topic: TopicRef, subscription: string, id: string): Promise<ReplayStatus | undefined> => {
    const raw = await store.get(recordKey(topic, subscription, id));
    if (raw === null) return undefined;
    const parsed = StoredReplay.safeParse(parseJson(raw));
    if (!parsed.success) {
      logger.error('replay.bad_record', { replayId: id });
      return undefined;
    }
    const { refreshed_at, ...status } = parsed.data;
    return status.status === 'running' && now() - refreshed_at > STALE_MS ? { ...status, status: 'interrupted' } : status;
  };

  /** the replays of the subscription still running anywhere; forgets the others */
  const running = async (topic: TopicRef, subscription: string): Promise<number> => {
    let count = 0;
    for (const id of await store.smembers(runningKey(topic, subscription))) {
      if ((await read(topic, subscription, id))?.status === 'running') count++;
      else await store.srem(runningKey(topic, subscription), id);
    }
    return count;
  };

  const startOf = (request: ReplayRequest): ReplayStart => {
    if (request.from_offset !== undefined) return { offset: request.from_offset };
    const time = Date.parse(request.from_time ?? '');
    if (time > now()) throw new InvalidRequest('from_time is in the future: nothing was published since');
    return { time };
  };

  /** the public text of a failed copy (the broker's own message goes to the log only) */
  const failure = (err: unknown): string => {
    if (err instanceof NoSubscriptionError) return 'the subscription was deleted during the replay';
    if (err instanceof BrokerUnavailableError) return 'the message broker became unavailable during the replay';
    // its message says how long the subscription queue stayed full: the tenant's to act on
    if (err instanceof ReplayStalledError) return err.message;
    return 'the replay failed';
  };

  return {
    /** 400 for a request start() would refuse before it starts anything (a time in the future) */
    check(request: ReplayRequest): void {
      startOf(request);
    },
    /**
     * Starts a replay into a subscription that exists (the caller made sure): its first status.
     * 400 for a time in the future, 429 when MAX_RUNNING_REPLAYS run for the subscription already.
     */
    async start(topic: TopicRef, subscription: string, request: ReplayRequest): Promise<ReplayStatus> {
      const from = startOf(request);
      const tooMany = () =>
        new TooManyRequests(`at most ${MAX_RUNNING_REPLAYS} replays run at once per subscription: ask again once one finished`, undefined, { 'Retry-After': String(REFRESH_MS / 1000) });
      if ((await running(topic, subscription)) >= MAX_RUNNING_REPLAYS) throw tooMany();
      const policy = await policies.of(topic);
      const id = randomUUID();
      const key = recordKey(topic, subscription, id);
      let status: ReplayStatus = {
        replay_id: id,
        tenant: topic.tenant,
        topic: topic.topic,
        subscription,
        ...request,
        status: 'running',
        copied: 0,
        started_at: new Date(now()).toISOString(),
      };
      const write = () => store.set(key, JSON.stringify({ ...status, refreshed_at: now() } satisfies StoredReplay), { ttlMs: KEEP_MS });
      await write();
      // the limit holds across instances: each counts after adding itself, so of replays started at the
      // same moment none passes beyond the limit (all of them may be refused, and asked again)
      await store.sadd(runningKey(topic, subscription), id);
      if ((await running(topic, subscription)) > MAX_RUNNING_REPLAYS) {
        await store.srem(runningKey(topic, subscription), id);
        await store.del(key);
        throw tooMany();
      }

      // one write at a time, in order; a failed one is logged (the next one writes the newer state)
      let writing = Promise.resolve();
      let written = now();
      const update = (next: Partial<ReplayStatus>) => {
        status = { ...status, ...next };
        written = now();
        writing = writing.then(write).then(
          () => undefined,
          (err: unknown) => logger.warn('replay.write_failed', { replayId: id, err }),
        );
      };
      const progress = ({ copied, firstOffset, lastOffset }: ReplayResult) => ({ copied, first_offset: firstOffset, last_offset: lastOffset });
      const refresh = setInterval(() => update({}), REFRESH_MS);
      refresh.unref();

      const started = status;
      const abort = new AbortController();
      const done = broker
        .replay(topic, subscription, from, {
          ttlMs: policy.messageTtlSec * 1000,
          // what the stream still holds beyond the feed's retention (RabbitMQ drops whole segments) is not replayed
          notBefore: now() - policy.retentionSec * 1000,
          signal: abort.signal,
          onProgress: (result) => {
            status = { ...status, ...progress(result) };
            if (now() - written >= PROGRESS_WRITE_MS) update({});
          },
        })
        .then(
          (result): Partial<ReplayStatus> => ({ ...progress(result), status: abort.signal.aborted ? 'interrupted' : 'completed' }),
          (err: unknown): Partial<ReplayStatus> => {
            logger.warn('replay.failed', { replayId: id, tenant: topic.tenant, topic: topic.topic, subscription, err });
            return { status: 'failed', error: failure(err) };
          },
        )
        .then(async (outcome) => {
          clearInterval(refresh);
          update({ ...outcome, finished_at: new Date(now()).toISOString() });
          await writing;
          await store.srem(runningKey(topic, subscription), id).catch(() => undefined);
          jobs.delete(id);
          logger.info('replay.finished', { replayId: id, tenant: topic.tenant, topic: topic.topic, subscription, status: status.status, copied: status.copied });
        });
      jobs.set(id, { abort, done });
      return started;
    },
    /** a replay of this tenant, topic and subscription; undefined when there is none */
    status: read,
    /** aborts this instance's replays and waits until each is recorded `interrupted` */
    async close(): Promise<void> {
      const stopping = [...jobs.values()];
      for (const job of stopping) job.abort.abort();
      await Promise.all(stopping.map((job) => job.done));
    },
  };
}
export type ReplayJobs = ReturnType<typeof replayJobs>;
