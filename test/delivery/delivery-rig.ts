import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { ApiError, topicClient, UnreachableError, type TopicClient } from '@keyway/clients';
import { createAgent, fileSink, type Agent } from '@keyway/importer';
import type { Logger } from '@keyway/kit';
import type { Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant } from '../helpers.ts';

/**
 * What the delivery fault tests share: a tenant with a producer and an importer agent (in process,
 * file sink) on one suite, a producer that publishes continuously and retries every batch until it
 * gets its 201 (the producer's side of the contract), and the comparison of what was published with
 * what reached the sink.
 */

/** How one call ended: an HTTP status, or `network:<code>` when the service did not answer. */
export type Outcome = string;

const outcomeOf = (err: unknown): Outcome | undefined => {
  if (err instanceof ApiError) return String(err.status);
  if (err instanceof UnreachableError) return `network:${err.causeCode ?? 'unknown'}`;
  return undefined;
};

/**
 * A 5xx, a 429, no answer, or 409 publish_in_progress (another publish of the same batch id, say by an
 * instance that died mid-publish, holds it for a few seconds): not accepted, to be sent again.
 */
const retryable = (outcome: Outcome) => outcome.startsWith('network:') || outcome === '429' || outcome === '409' || Number(outcome) >= 500;

/** Counts outcomes by where they were seen (`publish`, `receive`, `complete`, ...). */
export class Outcomes {
  readonly seen = new Map<string, number>();
  add(where: string, outcome: Outcome): void {
    const key = `${where} ${outcome}`;
    this.seen.set(key, (this.seen.get(key) ?? 0) + 1);
  }
  count(match: (where: string, outcome: Outcome) => boolean): number {
    let n = 0;
    for (const [key, count] of this.seen) {
      const [where = '', outcome = ''] = key.split(' ');
      if (match(where, outcome)) n += count;
    }
    return n;
  }
  /** answers any endpoint gave as an internal error (500): a fault must surface as 503 or a cut, never as this */
  internalErrors(): number {
    return this.count((_, outcome) => outcome === '500');
  }
  toString(): string {
    return [...this.seen].map(([key, n]) => `${key}: ${n}`).join(', ');
  }
}

/** The topic client with every failed call's status recorded, so a test sees what the agent saw. */
function observed(topic: TopicClient, outcomes: Outcomes): TopicClient {
  const watch =
    <A extends unknown[], R>(where: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (err) {
        const outcome = outcomeOf(err);
        // ERR_CANCELED is the agent aborting its own long poll on stop()
        if (outcome && outcome !== 'network:ERR_CANCELED') outcomes.add(where, outcome);
        throw err;
      }
    };
  return {
    ...topic,
    receive: watch('receive', topic.receive),
    complete: watch('complete', topic.complete),
    // the agent's completes: a failed request as above, each lost lock as the 410 a single complete would answer
    completeMany: watch('complete', async (...args: Parameters<TopicClient['completeMany']>) => {
      const results = await topic.completeMany(...args);
      for (const result of results) if (result.status === 'lock_lost') outcomes.add('complete', '410');
      return results;
    }),
    abandon: watch('abandon', topic.abandon),
    renewLock: watch('renewLock', topic.renewLock),
  };
}

export interface Producer {
  /** ids answered with 201, in the order they were accepted */
  readonly published: string[];
  /** every id ever sent (an id is sent again, unchanged, until it is accepted) */
  readonly attempted: Set<string>;
  /** ids still not accepted when their retry budget ran out (a test expects none) */
  readonly gaveUp: string[];
  stop(): Promise<void>;
}

/** The agent's warnings and errors, the last few kept, for a failing test's message. */
function tailLogger(lines: string[], keep = 20, fields: Record<string, unknown> = {}): Logger {
  const add = (level: string, msg: string, more?: Record<string, unknown>) => {
    const err = (more?.err ?? fields.err) as { name?: string; message?: string } | undefined;
    lines.push(`${new Date().toISOString().slice(11, 23)} ${level} ${msg}${err ? ` (${err.name ?? ''}: ${err.message ?? ''})` : ''}`);
    if (lines.length > keep) lines.shift();
  };
  return {
    debug: () => undefined,
    info: () => undefined,
    warn: (msg, more) => add('warn', msg, more),
    error: (msg, more) => add('error', msg, more),
    child: (more) => tailLogger(lines, keep, { ...fields, ...more }),
  };
}

export interface Rig {
  tenant: string;
  topic: string;
  sendKey: string;
  /** for a test that receives from the importer's subscription itself */
  listenKey: string;
  sinkFile: string;
  agent: Agent;
  /** the agent's last warnings and errors */
  agentLog: string[];
  /** stops the agent once (a second call waits for the first); a failed test calls it too, so nothing runs on after it */
  stopAgent(): Promise<void>;
  outcomes: Outcomes;
  /** starts `workers` producers, each publishing a batch, waiting for its 201 (retrying), then pausing `pauseMs` */
  produce(options?: { workers?: number; pauseMs?: number; retryMs?: number; giveUpMs?: number }): Producer;
  /** batch ids in the sink, in file order, duplicates kept; a line without its newline is not written yet */
  sinkIds(): string[];
  /** waits until the sink holds `done(ids)`; false when it did not within timeoutMs */
  waitForSink(done: (ids: string[]) => boolean, timeoutMs: number): Promise<boolean>;
}

/** waitForSink condition: the `count` batches accepted after the first `index` are all in the sink (delivery resumed). */
export const holdsAcceptedAfter =
  (producer: Producer, index: number, count = 20) =>
  (ids: string[]): boolean => {
    const after = producer.published.slice(index, index + count);
    return after.length === count && after.every((id) => ids.includes(id));
  };

/** waitForSink condition: every batch accepted so far is in the sink. */
export const holdsEveryAccepted =
  (producer: Producer) =>
  (ids: string[]): boolean =>
    producer.published.every((id) => ids.includes(id));

/** What the rig uses of a suite: its clients and the topic service's URL (a suite's, or a load balancer's in front of several instances). */
export type RigServices = Pick<Suite, 'operator' | 'pas' | 'pac' | 'topic' | 'pki'> & { urls: Pick<Suite['urls'], 'topic'> };

export async function deliveryRig(suite: RigServices, options: { receiveTimeoutSec?: number } = {}): Promise<Rig> {
  const { tenant, feed: topic, email } = await provisionTenant(suite);
  const producer = await suite.operator.createUser(tenant, { email: `producer@${tenant}.example`, password: PASSWORD, roles: ['producer', 'full-control'] });
  const { refresh_token } = await suite.pas.password(producer.email, PASSWORD);
  const { sas_key: sendKey } = await suite.pac.sas({ refresh_token, rights: 'send' });
  const { sas_key: listenKey } = await suite.pac.sas({ refresh_token, rights: 'listen' });
  const sinkFile = join(mkdtempSync(join(tmpdir(), 'keyway-delivery-')), 'batches.jsonl');
  const outcomes = new Outcomes();
  const agentLog: string[] = [];
  const agent = createAgent(
    { credentials: { kind: 'password', username: email, password: PASSWORD }, subscription: 'default', receiveTimeoutSec: options.receiveTimeoutSec ?? 1 },
    { pas: suite.pas, pac: suite.pac, topic: observed(suite.topic, outcomes), sink: await fileSink(sinkFile), logger: tailLogger(agentLog) },
  );
  // A producer gives a publish 5 s (not the client's default 75 s) before it counts it as failed and sends it again.
  const publisher = topicClient({ caPem: suite.pki.ca.certPem, baseUrl: suite.urls.topic, timeoutMs: 5000 });

  const sinkIds = (): string[] => {
    if (!existsSync(sinkFile)) return [];
    return readFileSync(sinkFile, 'utf8')
      .split('\n')
      .slice(0, -1)
      .map((line) => (JSON.parse(line) as { id: string }).id);
  };

  let stopping: Promise<void> | undefined;
  let seq = 0;
  const produce: Rig['produce'] = ({ workers = 2, pauseMs = 25, retryMs = 100, giveUpMs = 15_000 } = {}) => {
    const published: string[] = [];
    const attempted = new Set<string>();
    const gaveUp: string[] = [];
    let running = true;
    let fatal: unknown;

    /** sends one batch until it is accepted; the same batch (same id) every time, as a producer must */
    const publishUntilAccepted = async (): Promise<void> => {
      const batch = makeBatch(tenant, topic, seq++);
      attempted.add(batch.id);
      const giveUpAt = Date.now() + giveUpMs;
      for (;;) {
        try {
          await publisher.publish(sendKey, batch);
          outcomes.add('publish', '201');
          published.push(batch.id);
          return;
        } catch (err) {
          const outcome = outcomeOf(err);
          if (outcome === undefined || !retryable(outcome)) throw err;
          outcomes.add('publish', outcome);
          if (Date.now() > giveUpAt) {
            gaveUp.push(batch.id);
            return;
          }
          await sleep(outcome === '429' ? retryMs * 5 : retryMs);
        }
      }
    };

    const loops = Array.from({ length: workers }, async () => {
      while (running && fatal === undefined) {
        try {
          await publishUntilAccepted();
        } catch (err) {
          fatal = err;
          return;
        }
        await sleep(pauseMs);
      }
    });
    return {
      published,
      attempted,
      gaveUp,
      async stop() {
        running = false;
        await Promise.all(loops);
        // A refusal no retry can cure (400, 401, 403) is a failed test, not a fault to ride out.
        if (fatal !== undefined) throw fatal;
      },
    };
  };

  return {
    tenant,
    topic,
    sendKey,
    listenKey,
    sinkFile,
    agent,
    agentLog,
    stopAgent: () => (stopping ??= agent.stop()),
    outcomes,
    produce,
    sinkIds,
    async waitForSink(done, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (done(sinkIds())) return true;
        if (Date.now() > deadline) return false;
        await sleep(50);
      }
    },
  };
}

/**
 * The verdict of a fault test: every accepted batch is in the sink (at least once), nothing is in
 * the sink that was never sent, and the duplicates are counted (allowed: delivery is at least once).
 */
export function compare(producer: Producer, sink: string[]) {
  const inSink = new Set(sink);
  const missing = producer.published.filter((id) => !inSink.has(id));
  const unknown = [...inSink].filter((id) => !producer.attempted.has(id));
  const duplicates = sink.length - inSink.size;
  const summary =
    `published ${producer.published.length} (201), sink ${sink.length} lines / ${inSink.size} distinct, ` +
    `duplicates ${duplicates}, missing ${missing.length}${missing.length ? ` [${missing.slice(0, 10).join(', ')}]` : ''}, ` +
    `never sent ${unknown.length}, gave up ${producer.gaveUp.length}`;
  return { missing, unknown, duplicates, summary };
}

/**
 * How every delivery fault test ends: waits up to `timeoutMs` for every accepted batch to reach the
 * sink, stops the agent, reports the run (with the test's own figures, read after the agent stopped)
 * and asserts that nothing accepted is missing, nothing unknown arrived and no producer gave up. The
 * verdict is returned for the test's own checks.
 */
export async function expectEveryAcceptedDelivered(
  rig: Rig,
  producer: Producer,
  name: string,
  options: { timeoutMs: number; stage: (what: string) => void; context: () => string; figures?: () => Record<string, unknown> | Promise<Record<string, unknown>> },
) {
  const complete = await rig.waitForSink(holdsEveryAccepted(producer), options.timeoutMs);
  options.stage(`every accepted batch in the sink: ${complete}`);
  await rig.stopAgent();
  const verdict = compare(producer, rig.sinkIds());
  report(name, {
    summary: verdict.summary,
    ...(await options.figures?.()),
    outcomes: rig.outcomes.toString(),
    agentErrors: rig.agent.stats.errors,
    duplicatesDropped: rig.agent.stats.duplicatesDropped,
  });
  expect(complete, `${verdict.summary}; ${options.context()}`).toBe(true);
  expect(verdict.missing, verdict.summary).toEqual([]);
  expect(verdict.unknown, verdict.summary).toEqual([]);
  expect(producer.gaveUp, verdict.summary).toEqual([]);
  return verdict;
}

/**
 * Timestamps of a test's stages, printed as they happen, so a test that runs out of time shows
 * where it was.
 */
export function timeline(name: string) {
  const started = Date.now();
  return (stage: string) => process.stdout.write(`[${name}] +${((Date.now() - started) / 1000).toFixed(1)} s ${stage}\n`);
}

/** Appends a note for the test's output (vitest prints console output of a test on failure and with --reporter=verbose). */
export function report(name: string, lines: Record<string, unknown>): void {
  process.stdout.write(
    `[${name}] ${Object.entries(lines)
      .map(([k, v]) => `${k}: ${String(v)}`)
      .join(' | ')}\n`,
  );
}
