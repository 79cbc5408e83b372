import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AMQP_URL, REDIS_URL, startSuite, type Suite, testPki } from '@keyway/testkit';
import { startRelay } from './delivery-relay.ts';
import { batchIds, RECORDS_PER_BATCH } from './delivery-batches.ts';
import type { FromWorker, Job } from './delivery-worker.ts';
import { fixed, machine } from './measure.ts';

/**
 * End-to-end delivery: producers → topic service (HTTPS, SAS check, rate quota in Redis, batch
 * scan and schema, publisher confirm) → RabbitMQ (quorum queue, persistent) → consumer → file sink
 * (one fsync per batch) → complete. Measured with two consumers: the importer agent as it ships
 * (its defaults: the stream endpoint, writes pipelined in delivery order, a state-file checkpoint) and a bare streaming consumer loop (the `stream`
 * endpoint, writes pipelined through the same file sink, each batch completed after its write).
 * Beside them the ceiling: raw amqplib on the same RabbitMQ with the same bodies, count and
 * durability (confirm channel, persistent messages, quorum queue, manual ack after an fsync'd
 * append), and the same without the fsync.
 *
 * As in production, producers and consumer are not the services' process: each runs in a thread of
 * its own (bench/delivery-worker.ts); the main thread runs the five services. The raw ceiling uses
 * the same layout. Latency is per batch, from the start of its first publish to its write resolving
 * (after the fsync); throughput is the batch count over the time from the first publish to the last
 * write. A warm-up round (JIT, TLS sessions, queue declaration) runs before each measured one.
 */
const BATCHES = Number(process.env.BENCH_DELIVERY_BATCHES ?? 2000);
/** which measurements to run (comma-separated: raw, relay, stream, agent); all by default */
const ONLY = new Set((process.env.BENCH_DELIVERY_ONLY ?? 'raw,relay,stream,agent').split(','));
const PRODUCERS = 4;
const WARMUP_BATCHES = 100;
/** messages in flight to a consumer: the stream's credit and the raw consumer's prefetch (the suite's broker prefetch is 50 too) */
const PREFETCH = 50;
const ROUND_TIMEOUT_MS = 300_000;
const PASSWORD = 'bench-password-0123456789';

export interface DeliveryFigure {
  name: string;
  batches: number;
  seconds: number;
  batchesPerSec: number;
  recordsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** time to the publish being accepted (201 / broker confirm), p50 */
  publishP50Ms: number;
  /** CPU time of this Node process, every thread (user + system), per batch: all the work but RabbitMQ's and Redis's, whatever the machine's load */
  cpuMsPerBatch: number;
  /** share of the time the main thread (the five services; idle for the raw ceiling) was busy */
  servicesBusy: number;
  /** publishes sent again after a 429/5xx/network failure */
  retries: number;
  /** batches written more than once (redeliveries) */
  duplicates: number;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

// ---- threads ----

const TSX_API = import.meta.resolve('tsx/esm/api');
const WORKER = new URL('./delivery-worker.ts', import.meta.url).href;

/** A worker thread running one Job, with its messages as promises. */
class Thread {
  private readonly worker: Worker;
  private readonly waiting = new Map<FromWorker['t'], Array<(message: FromWorker) => void>>();
  private failure: Error | undefined;
  private readonly failed: Array<(err: Error) => void> = [];

  constructor(job: Job, onWritten?: (id: string, at: number) => void) {
    // the worker registers tsx itself: loader hooks given on the command line do not reach worker threads in Node 20
    this.worker = new Worker(`import(${JSON.stringify(TSX_API)}).then(({ register }) => { register(); return import(${JSON.stringify(WORKER)}); })`, {
      eval: true,
      workerData: job,
    });
    this.worker.on('message', (message: FromWorker) => {
      if (message.t === 'written') onWritten?.(message.id, message.at);
      else if (message.t === 'failed') this.fail(new Error(`${job.role}: ${message.error}`));
      else this.waiting.get(message.t)?.shift()?.(message);
    });
    this.worker.on('error', (err) => this.fail(err));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const reject of this.failed.splice(0)) reject(err);
  }

  next<T extends FromWorker['t']>(type: T): Promise<Extract<FromWorker, { t: T }>> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(type) ?? [];
      list.push(resolve as (message: FromWorker) => void);
      this.waiting.set(type, list);
      this.failed.push(reject);
    });
  }

  send(message: { t: 'round'; ids: string[] } | { t: 'stop' }): void {
    this.worker.postMessage(message);
  }

  async stop(): Promise<void> {
    const stopped = this.next('stopped');
    this.send({ t: 'stop' });
    // unref'd: a timer left running would keep the process alive after the benchmark
    await Promise.race([stopped, sleep(30_000, undefined, { ref: false })]).catch(() => undefined);
    await this.worker.terminate();
  }
}

/** One round: the producer's send times and the consumer's write times per batch. */
class Round {
  private readonly pending: Set<string>;
  private readonly writtenAt = new Map<string, number>();
  duplicates = 0;
  private readonly cpuAtStart = process.cpuUsage();
  private cpu: NodeJS.CpuUsage | undefined;
  private readonly eluAtStart = performance.eventLoopUtilization();
  private elu: number | undefined;
  private resolve!: () => void;
  readonly done: Promise<void>;

  constructor(readonly ids: string[]) {
    this.pending = new Set(ids);
    this.done = new Promise((resolve) => (this.resolve = resolve));
  }

  written(id: string, at: number): void {
    if (!this.pending.delete(id)) {
      if (this.writtenAt.has(id)) this.duplicates += 1;
      return;
    }
    this.writtenAt.set(id, at);
    if (this.pending.size === 0) {
      this.cpu = process.cpuUsage(this.cpuAtStart);
      this.elu = performance.eventLoopUtilization(this.eluAtStart).utilization;
      this.resolve();
    }
  }

  figure(name: string, produced: Extract<FromWorker, { t: 'round-done' }>): DeliveryFigure {
    const latencies = produced.sentAt.map(([id, at]) => (this.writtenAt.get(id) ?? NaN) - at).sort((a, b) => a - b);
    const firstSend = Math.min(...produced.sentAt.map(([, at]) => at));
    const lastWrite = Math.max(...this.writtenAt.values());
    const seconds = (lastWrite - firstSend) / 1000;
    const batches = this.ids.length;
    return {
      name,
      batches,
      seconds,
      batchesPerSec: batches / seconds,
      recordsPerSec: (batches * RECORDS_PER_BATCH) / seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      publishP50Ms: percentile(
        [...produced.acceptMs].sort((a, b) => a - b),
        50,
      ),
      cpuMsPerBatch: this.cpu ? (this.cpu.user + this.cpu.system) / 1000 / batches : NaN,
      servicesBusy: this.elu ?? NaN,
      retries: produced.retries,
      duplicates: this.duplicates,
    };
  }
}

/** Starts the consumer, then the producers; a warm-up round, then the measured one. */
async function measure(name: string, consumerJob: Job, producerJob: Job): Promise<DeliveryFigure> {
  let current: Round | undefined;
  const consumer = new Thread(consumerJob, (id, at) => current?.written(id, at));
  const producer = new Thread(producerJob);
  try {
    await Promise.all([consumer.next('ready'), producer.next('ready')]);
    const round = async (count: number): Promise<DeliveryFigure> => {
      const r = new Round(batchIds(count));
      current = r;
      producer.send({ t: 'round', ids: r.ids });
      const cancel = new AbortController();
      const timeout = sleep(ROUND_TIMEOUT_MS, undefined, { signal: cancel.signal }).then(
        () => Promise.reject(new Error(`${name}: not every batch reached the sink within ${ROUND_TIMEOUT_MS / 1000} s`)),
        () => new Promise<never>(() => undefined),
      );
      try {
        const [produced] = await Promise.race([Promise.all([producer.next('round-done'), r.done]), timeout]);
        return r.figure(name, produced);
      } finally {
        cancel.abort();
      }
    };
    await round(WARMUP_BATCHES);
    return await round(BATCHES);
  } finally {
    await producer.stop();
    await consumer.stop();
  }
}

// ---- the three set-ups ----

interface Feed {
  tenant: string;
  topic: string;
  sendKey: string;
  listenKey: string;
  email: string;
}

async function feed(suite: Suite): Promise<Feed> {
  const tenant = `bench-${randomUUID().slice(0, 8)}`;
  await suite.operator.createTenant({ id: tenant, name: 'Bench', feeds: ['edr-events'] });
  const email = `agent@${tenant}.example`;
  await suite.operator.createUser(tenant, { email, password: PASSWORD, roles: ['full-control'] });
  const producer = await suite.operator.createUser(tenant, { email: `producer@${tenant}.example`, password: PASSWORD, roles: ['producer', 'full-control'] });
  const { refresh_token } = await suite.pas.password(producer.email, PASSWORD);
  const { sas_key: sendKey } = await suite.pac.sas({ refresh_token, rights: 'send' });
  const { sas_key: listenKey } = await suite.pac.sas({ refresh_token, rights: 'listen' });
  return { tenant, topic: 'edr-events', sendKey, listenKey, email };
}

function producers(suite: Suite, f: Feed): Job {
  return { role: 'produce-https', baseUrl: suite.urls.topic, caPem: suite.pki.ca.certPem, sendKey: f.sendKey, tenant: f.tenant, topic: f.topic, concurrency: PRODUCERS };
}

async function endToEndAgent(suite: Suite, dir: string): Promise<DeliveryFigure> {
  const f = await feed(suite);
  const agent: Job = {
    role: 'consume-agent',
    pasUrl: suite.urls.pas,
    pacUrl: suite.urls.pac,
    topicUrl: suite.urls.topic,
    caPem: suite.pki.ca.certPem,
    username: f.email,
    password: PASSWORD,
    sinkFile: join(dir, 'agent.jsonl'),
  };
  return measure('end to end, importer agent as shipped (stream, state-file checkpoint)', agent, producers(suite, f));
}

async function endToEndStream(suite: Suite, dir: string): Promise<DeliveryFigure> {
  const f = await feed(suite);
  const stream: Job = {
    role: 'consume-stream',
    baseUrl: suite.urls.topic,
    caPem: suite.pki.ca.certPem,
    listenKey: f.listenKey,
    tenant: f.tenant,
    topic: f.topic,
    sinkFile: join(dir, 'stream.jsonl'),
    prefetch: PREFETCH,
  };
  return measure('end to end, streaming consumer (stream endpoint)', stream, producers(suite, f));
}

async function raw(dir: string, fsync: boolean): Promise<DeliveryFigure> {
  const queue = `keyway.bench.raw.${randomUUID().slice(0, 8)}`;
  return measure(
    `raw amqplib: confirm publish → quorum queue → consume, ack after append${fsync ? ' + fsync' : ' (no fsync)'}`,
    { role: 'consume-amqp', amqpUrl: AMQP_URL, queue, file: join(dir, `raw-${fsync ? 'fsync' : 'nofsync'}.jsonl`), fsync, prefetch: PREFETCH },
    { role: 'produce-amqp', amqpUrl: AMQP_URL, queue, tenant: 'bench', topic: 'edr-events', concurrency: PRODUCERS },
  );
}

async function relayFloor(dir: string): Promise<DeliveryFigure> {
  const pki = await testPki();
  const relay = await startRelay(AMQP_URL, `keyway.bench.relay.${randomUUID().slice(0, 8)}`, pki.certs.topic!, PREFETCH);
  try {
    return await measure(
      'floor: bare HTTPS relay (node:https, no checks) → quorum queue → stream, ack after append + fsync',
      { role: 'consume-relay', url: relay.url, caPem: pki.ca.certPem, file: join(dir, 'relay.jsonl') },
      { role: 'produce-relay', url: relay.url, caPem: pki.ca.certPem, concurrency: PRODUCERS },
    );
  } finally {
    await relay.close();
  }
}

export async function delivery(): Promise<DeliveryFigure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-bench-delivery-'));
  try {
    const figures: DeliveryFigure[] = [];
    if (ONLY.has('raw')) {
      figures.push(await raw(dir, true));
      figures.push(await raw(dir, false));
    }
    if (ONLY.has('relay')) figures.push(await relayFloor(dir));
    if (!ONLY.has('stream') && !ONLY.has('agent')) return figures;
    // Quotas as high as they go: this measures the path, not the per-tenant rate limit (its Redis INCR still runs).
    const suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, topic: { publishRatePerSec: 1_000_000, publishBurst: 1_000_000 } });
    try {
      if (ONLY.has('stream')) figures.push(await endToEndStream(suite, dir));
      if (ONLY.has('agent')) figures.push(await endToEndAgent(suite, dir));
    } finally {
      await suite.close();
    }
    return figures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Markdown, like the other benchmarks, plus each end-to-end figure as a share of the fsync'd ceiling. */
export function deliveryTable(figures: DeliveryFigure[]): string {
  const rows = figures.map(
    (f) =>
      `| ${f.name} | ${f.batches} | ${fixed(f.batchesPerSec, 0)} | ${fixed(f.recordsPerSec, 0)} | ${fixed(f.p50Ms, 1)} | ${fixed(f.p99Ms, 1)} | ${fixed(f.publishP50Ms, 1)} | ${fixed(f.cpuMsPerBatch, 2)} | ${fixed(100 * f.servicesBusy, 0)} % | ${f.retries} / ${f.duplicates} | ${fixed(f.seconds, 2)} s |`,
  );
  const ceiling = figures.find((f) => f.name.startsWith('raw') && f.name.endsWith('+ fsync'));
  const ratios = ceiling
    ? figures
        .filter((f) => f.name.startsWith('end to end') || f.name.startsWith('floor'))
        .map(
          (f) =>
            `- ${f.name}: ${fixed(f.batchesPerSec / ceiling.batchesPerSec, 2)} × the fsync'd raw ceiling in batches/s, ${fixed(f.cpuMsPerBatch / ceiling.cpuMsPerBatch, 1)} × its Node CPU per batch`,
        )
    : [];
  return [
    `### Delivery (${RECORDS_PER_BATCH} records a batch, about 31 KB; ${PRODUCERS} producers; RabbitMQ quorum queue; one fsync per batch unless noted)`,
    '',
    '| what | batches | batches/s | records/s | p50 ms | p99 ms | publish p50 ms | Node CPU ms/batch | services thread busy | retries / dup. | wall |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    ...ratios,
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${machine()}\n\n${deliveryTable(await delivery())}`);
}
