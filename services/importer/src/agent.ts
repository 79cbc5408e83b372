import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError, type PacClient, type PasClient, type TopicClient } from '@keyway/clients';
import type { Logger } from '@keyway/kit';
import { SasKeeper } from './credentials/sas.ts';
import { Session, type Credentials } from './credentials/session.ts';
import { RecentIds } from './pull/recent-ids.ts';
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
  logger: Logger;
  now?: () => number;
}

export interface AgentStats {
  written: number;
  duplicatesDropped: number;
  errors: number;
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
  const sas = new SasKeeper(deps.pac, session, options.resource, log, deps.now);
  const recent = new RecentIds();
  const stats: AgentStats = { written: 0, duplicatesDropped: 0, errors: 0 };
  const abort = new AbortController();
  let loop: Promise<void> | undefined;

  async function pullOnce(): Promise<void> {
    const { sasKey, address } = await sas.key();
    const message = await deps.topic.receive(sasKey, address.tenant, address.topic, options.subscription, options.receiveTimeoutSec, abort.signal);
    if (!message) return;
    const settle = [sasKey, address.tenant, address.topic, options.subscription, message.message_id, message.lock_token] as const;
    if (recent.has(message.batch.id)) {
      stats.duplicatesDropped += 1;
    } else {
      try {
        await deps.sink.write(message.batch);
      } catch (err) {
        log.error('sink write failed; abandoning the batch', { batchId: message.batch.id, err });
        await deps.topic.abandon(...settle).catch(() => undefined);
        throw err;
      }
      recent.add(message.batch.id);
      stats.written += 1;
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
        stats.errors += 1;
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
    /** Stops pulling; a batch in the middle of its write finishes and is acked first. */
    async stop(): Promise<void> {
      abort.abort();
      await loop;
      await deps.sink.close();
    },
  };
}
export type Agent = ReturnType<typeof createAgent>;
