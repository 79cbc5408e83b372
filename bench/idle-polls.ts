import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError, createHttp, topicClient, UnreachableError } from '@keyway/clients';
import { createRedisStore } from '@keyway/store';
import { AMQP_URL, REDIS_URL } from '@keyway/testkit';
import { freePort } from '@keyway/testkit/servers';
import type { FromChild, ToChild } from './idle-polls-child.ts';
import { machine, measure, table, type Figure } from './measure.ts';

/**
 * 10,000 idle long polls on one topic instance: receives with the longest timeout (60 s) held open on
 * feeds nobody publishes to, each on a TLS connection of its own, and sent again when they answer.
 * Measured in one run: the topic instance's RSS with the polls open (target under 1 GiB), and another
 * tenant's publish latency with no poll open and then with the 10,000 open (target: p99 no worse
 * than 2×).
 *
 * Four processes, each its own event loop: the measured topic instance (services/topic/src/main.ts
 * as an operator runs it, production defaults), the rest of the suite it relies on (PAC, the
 * entitlement service, ...; bench/idle-polls-child.ts `services`), the holders of the long polls
 * (`holders`), and this one, which publishes as the other tenant and reads the instance's RSS. The
 * topic instance and the holders get a raised file-descriptor limit (10,000 sockets each and more);
 * nothing else does.
 */
const POLLS = Number(process.env.BENCH_IDLE_POLLS ?? 10_000);
/** feeds (one tenant each) the polls are spread over */
const IDLE_FEEDS = 20;
/** loopback addresses the polls come from: 10,000 / 64 stays under the listener's 256 connections per address */
const SOURCES = 64;
const POLL_TIMEOUT_SEC = 60;
const PUBLISHES = Number(process.env.BENCH_IDLE_PUBLISHES ?? 2000);
const PUBLISH_CONCURRENCY = 4;
/** enough for the publish path to be warm (JIT), or the quiet round, measured first, looks slower than it is */
const WARMUP_PUBLISHES = 1000;
const FD_LIMIT = 65_536;
const GiB = 1024 ** 3;

/** `ulimit -n` above the hard limit needs root; otherwise the hard limit is as far as it goes */
const RAISED_FD_LIMIT = `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`;
/** BENCH_CPU_PROF=<dir>: a V8 CPU profile of each child, written there when it exits */
const PROFILE = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
const TOPIC_MAIN = fileURLToPath(new URL('../services/topic/src/main.ts', import.meta.url));

const CHILD = fileURLToPath(new URL('./idle-polls-child.ts', import.meta.url));

/** A child process (bench/idle-polls-child.ts) with a raised open-file limit (its own, through the shell that execs it) and an IPC channel. */
class Child {
  readonly process: ChildProcess;
  private readonly waiting: Array<{ type: FromChild['t']; resolve: (message: FromChild) => void; reject: (err: Error) => void }> = [];
  private failure: Error | undefined;

  constructor(args: string[]) {
    this.process = spawn('sh', ['-c', RAISED_FD_LIMIT, process.execPath, ...PROFILE, '--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.process.on('message', (message: FromChild) => {
      if (message.t === 'failed') return this.fail(new Error(`${args[0]}: ${message.error}`));
      const at = this.waiting.findIndex((w) => w.type === message.t);
      if (at >= 0) this.waiting.splice(at, 1)[0]!.resolve(message);
    });
    this.process.on('exit', (code, signal) => this.fail(new Error(`${args[0]} exited (${code ?? signal})`)));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  next<T extends FromChild['t']>(type: T, timeoutMs: number): Promise<Extract<FromChild, { t: T }>> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} within ${timeoutMs} ms`)), timeoutMs);
      const done =
        <A>(f: (a: A) => void) =>
        (a: A) => {
          clearTimeout(timer);
          f(a);
        };
      this.waiting.push({ type, resolve: done(resolve as (m: FromChild) => void), reject: done(reject) });
    });
  }

  ask<T extends FromChild['t']>(message: ToChild, answer: T, timeoutMs = 30_000): Promise<Extract<FromChild, { t: T }>> {
    const answered = this.next(answer, timeoutMs);
    this.process.send(message);
    return answered;
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.send({ t: 'stop' } satisfies ToChild);
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

export interface IdlePollsResult {
  /** publishes with no poll open, then with the polls open; each with its failed publishes by answer ('' when none) */
  figures: [Figure & { failed: string }, Figure & { failed: string }];
  polls: number;
  rampSec: number;
  rssBefore: number;
  rssHolding: number;
  /** polls answered 204 and sent again during the loaded round, and failures (refused, cut) */
  answered: number;
  failed: number;
  /** polls that failed while they were being opened */
  failedOpening: number;
  lastError?: string;
}

/** A process's resident set, from /proc (Linux). */
const rssOf = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024;

/** The measured topic instance: its own process, production defaults, wired to the suite's PAC, entitlement service and database. */
async function startTopic(ready: Extract<FromChild, { t: 'ready' }>, storePrefix: string): Promise<{ process: ChildProcess; url: string }> {
  const port = await freePort();
  const env = {
    PATH: process.env.PATH ?? '',
    PORT: String(port),
    TLS_CERT_FILE: join(ready.pkiDir, 'topic.crt'),
    TLS_KEY_FILE: join(ready.pkiDir, 'topic.key'),
    TLS_CA_FILE: join(ready.pkiDir, 'ca.crt'),
    REDIS_URL,
    AMQP_URL,
    DATABASE_URL: ready.databaseUrl,
    STORE_PREFIX: storePrefix,
    // the URL the tenants' SAS keys name, as behind a load balancer: not this instance's own
    PUBLIC_BASE_URL: ready.topicUrl,
    PAC_URL: ready.pacUrl,
    ENTITLEMENT_URL: ready.entitlementUrl,
    LOG_LEVEL: 'warn',
    // the publisher is measured for latency, not throttled
    PUBLISH_RATE_PER_SEC: '100000',
    PUBLISH_BURST: '100000',
  };
  const child = spawn('sh', ['-c', RAISED_FD_LIMIT, process.execPath, ...PROFILE, '--import', 'tsx', TOPIC_MAIN], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `https://localhost:${port}`;
  const http = createHttp({ baseUrl: url, caPem: ready.caPem, timeoutMs: 1000 });
  const deadline = Date.now() + 120_000;
  while (
    (await http.get('/readyz').then(
      (r) => r.status,
      () => 0,
    )) !== 200
  ) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the topic instance did not start (${child.exitCode ?? 'not ready in 120 s'})`);
    await sleep(200);
  }
  return { process: child, url };
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

export async function idlePolls(): Promise<IdlePollsResult> {
  const services = new Child(['services', String(IDLE_FEEDS)]);
  const storePrefix = `keyway-bench-idle-${randomUUID()}`;
  let topic: { process: ChildProcess; url: string } | undefined;
  let holders: Child | undefined;
  try {
    const ready = await services.next('ready', 180_000);
    topic = await startTopic(ready, storePrefix);
    const pid = topic.process.pid!;
    const publisher = topicClient({ baseUrl: topic.url, caPem: ready.caPem });
    const { tenant, topic: feed, key } = ready.publisher;
    /** publishes refused or failed, by answer: counted (their time too), not retried, so a bench under strain still reports */
    const refused = new Map<string, number>();
    const publish = () =>
      publisher
        .publish(key, { id: `b-${randomUUID()}`, tenant, topic: feed, seq: 0, createdAt: new Date().toISOString(), contentType: 'application/json', records: [{ event: 'login' }] })
        .catch((err: unknown) => {
          const answer = err instanceof ApiError ? `${err.status} ${err.code}` : err instanceof UnreachableError ? `no answer (${err.causeCode})` : String(err);
          refused.set(answer, (refused.get(answer) ?? 0) + 1);
        });
    const publishes = async (name: string, iterations: number) => {
      refused.clear();
      const figure = await measure(name, { iterations, concurrency: PUBLISH_CONCURRENCY }, publish);
      return { ...figure, failed: [...refused].map(([answer, n]) => `${n} × ${answer}`).join(', ') };
    };

    await publishes('warm-up', WARMUP_PUBLISHES);
    const quiet = await publishes('publish, no long poll open', PUBLISHES);
    const rssBefore = rssOf(pid);

    holders = new Child(['holders']);
    await holders.next('started', 60_000);
    holders.process.send({ t: 'hold', topicUrl: topic.url, caPem: ready.caPem, idle: ready.idle, count: POLLS, timeoutSec: POLL_TIMEOUT_SEC, sources: SOURCES } satisfies ToChild);
    const holding = await holders.next('holding', 600_000);
    // the last receives sent reach the service and park
    await sleep(2000);
    const loaded = await publishes(`publish, ${POLLS.toLocaleString('en-US')} long polls open`, PUBLISHES);
    const rssHolding = rssOf(pid);
    const counts = await holders.ask({ t: 'counts' }, 'counts');
    // the counts are the holders' since they began: what happened during the loaded round is the difference
    return {
      figures: [quiet, loaded],
      polls: POLLS,
      rampSec: holding.rampSec,
      rssBefore,
      rssHolding,
      answered: counts.answered - holding.answered,
      failed: counts.failed - holding.failed,
      failedOpening: holding.failed,
      lastError: counts.lastError,
    };
  } finally {
    await holders?.stop();
    if (topic) await stopProcess(topic.process);
    await services.stop();
    // the measured instance's own keys (the suite deletes its own)
    const store = await createRedisStore({ url: REDIS_URL, prefix: `${storePrefix}:` });
    const keys = await store.keys('');
    if (keys.length > 0) await store.del(...keys);
    await store.close();
  }
}

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(0)} MiB`;

export function idlePollsTable(result: IdlePollsResult): string {
  const [quiet, loaded] = result.figures;
  const lines = [
    table(`${result.polls.toLocaleString('en-US')} idle long polls on one topic instance (publishes: ${PUBLISH_CONCURRENCY} in flight, another tenant)`, result.figures),
    `- polls opened in ${result.rampSec.toFixed(1)} s from ${SOURCES} loopback addresses; ${result.failedOpening} failed while opening; during the loaded round ${result.answered} answered 204 and were sent again, ${result.failed} failed${result.lastError ? ` (last: ${result.lastError})` : ''}`,
    ...result.figures.filter((f) => f.failed).map((f) => `- ${f.name}: failed ${f.failed}`),
    `- topic instance RSS: ${mib(result.rssBefore)} before, ${mib(result.rssHolding)} with the polls open; ${((result.rssHolding - result.rssBefore) / result.polls / 1024).toFixed(1)} KiB per poll`,
    `- **RSS / 1 GiB: ${(result.rssHolding / GiB).toFixed(2)}** (target < 1)`,
    `- **publish p99 with the polls open / without: ${(loaded.p99Ms / quiet.p99Ms).toFixed(2)}×** (target ≤ 2; p50 ${(loaded.p50Ms / quiet.p50Ms).toFixed(2)}×)`,
    '',
  ];
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`Machine: ${machine()}\n\n`);
  process.stdout.write(idlePollsTable(await idlePolls()));
}
