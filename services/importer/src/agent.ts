import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError, type PacClient, type PasClient, type TopicClient } from '@keyway/clients';
import type { Logger } from '@keyway/kit';
import { memoryCheckpoint, type Checkpoint } from './checkpoint.ts';
import { SasKeeper } from './credentials/sas.ts';
import { Session, type Credentials } from './credentials/session.ts';
import type { Sink } from './sinks/sink.ts';

export interface AgentOptions {
  credentials: Credentials;
  /** topic URI to ask PAC for; unset = the tenant's feed */
  resource?: string;
  subscription: string;
  receiveTimeoutSec: number;
}

export interface AgentDeps {
  pas: PasClient;
  pac: PacClient;
  topic: TopicClient;
  sink: Sink;
  /** ids already written; unset = kept in memory only (duplicates are dropped until the agent stops) */
  checkpoint?: Checkpoint;
  logger: Logger;
  now?: () => number;
}

interface AgentStats {
  written: number;
  duplicatesDropped: number;
  errors: number;
  logins: number;
  refreshes: number;
  sasKeys: number;
}

const MAX_BACKOFF_MS = 10_000;

/**
 * The importer: runs the chain unattended (login → SAS key → receive → write → ack) and keeps its
 * credentials fresh. A batch is completed only after the sink says it is durable; anything that goes
 * wrong before that abandons it, so the topic service delivers it again.
 */
export function createAgent(options: AgentOptions, deps: AgentDeps) {
  const log = deps.logger;
  const session = new Session(deps.pas, options.credentials, log, deps.now);
  const sas = new SasKeeper(deps.pac, session, options.resource, log, (options.receiveTimeoutSec + 5) * 1000, deps.now);
  const checkpoint = deps.checkpoint ?? memoryCheckpoint();
  const counts = { written: 0, duplicatesDropped: 0, errors: 0 };
  const stats: AgentStats = {
    get written() {
      return counts.written;
    },
    get duplicatesDropped() {
      return counts.duplicatesDropped;
    },
    get errors() {
      return counts.errors;
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
  const abort = new AbortController();
  let loop: Promise<void> | undefined;

  async function pullOnce(): Promise<void> {
    const { sasKey, address } = await sas.key();
    const message = await deps.topic.receive(sasKey, address.tenant, address.topic, options.subscription, options.receiveTimeoutSec, abort.signal);
    if (!message) return;
    const settle = [sasKey, address.tenant, address.topic, options.subscription, message.message_id, message.lock_token] as const;
    if (checkpoint.has(message.batch.id)) {
      counts.duplicatesDropped += 1;
    } else {
      try {
        await deps.sink.write(message.batch);
      } catch (err) {
        log.error('sink write failed; abandoning the batch', { batchId: message.batch.id, err });
        await deps.topic.abandon(...settle).catch(() => undefined);
        throw err;
      }
      counts.written += 1;
      // The batch is durable in the sink, so it is acked even when the checkpoint cannot be
      // written: abandoning it would only write it twice. What is lost is the protection against a
      // redelivery after a crash before the ack (this process still remembers the id).
      await checkpoint.record(message.batch.id).catch((err: unknown) => {
        counts.errors += 1;
        log.error('checkpoint write failed; the batch is acked anyway', { batchId: message.batch.id, err });
      });
    }
    await deps.topic.complete(...settle).catch((err: unknown) => {
      // The lock lapsed: the batch comes back and is dropped as a duplicate, so nothing is lost.
      if (err instanceof ApiError && err.code === 'lock_lost') log.warn('lock lost before completion', { batchId: message.batch.id });
      else throw err;
    });
  }

  async function run(): Promise<void> {
    let backoffMs = 250;
    while (!abort.signal.aborted) {
      try {
        await pullOnce();
        backoffMs = 250;
      } catch (err) {
        if (abort.signal.aborted) break;
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
    start(): void {
      loop ??= run();
    },
    /**
     * Stops pulling (a long poll in progress is aborted at once); a batch in the middle of its write
     * finishes, is checkpointed and acked first; then the sink and the checkpoint are closed.
     */
    async stop(): Promise<void> {
      abort.abort();
      await loop;
      await deps.sink.close();
      await checkpoint.close();
    },
  };
}
export type Agent = ReturnType<typeof createAgent>;
