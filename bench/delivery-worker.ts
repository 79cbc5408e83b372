import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { ApiError, pacClient, pasClient, topicClient, UnreachableError } from '@keyway/clients';
import type { Batch } from '@keyway/contracts';
import { createAgent, fileCheckpoint, fileSink, type Sink } from '@keyway/importer';
import { silentLogger } from '@keyway/kit';
import { makeBatches, now } from './delivery-batches.ts';

/**
 * One side of the delivery benchmark in a thread of its own, as producers and importers are
 * processes of their own in production: the producers, or a consumer writing to a file. The main
 * thread runs the services (bench/delivery.ts).
 */

export type Job =
  | { role: 'produce-https'; baseUrl: string; caPem: string; sendKey: string; tenant: string; topic: string; concurrency: number }
  | { role: 'produce-amqp'; amqpUrl: string; queue: string; tenant: string; topic: string; concurrency: number }
  | { role: 'consume-stream'; baseUrl: string; caPem: string; listenKey: string; tenant: string; topic: string; sinkFile: string; prefetch: number }
  | { role: 'consume-agent'; pasUrl: string; pacUrl: string; topicUrl: string; caPem: string; username: string; password: string; sinkFile: string }
  | { role: 'consume-amqp'; amqpUrl: string; queue: string; file: string; fsync: boolean; prefetch: number };

export type ToWorker = { t: 'round'; ids: string[] } | { t: 'stop' };

export type FromWorker =
  | { t: 'ready' }
  /** a consumer wrote a batch (the write, fsync included, resolved) */
  | { t: 'written'; id: string; at: number }
  /** a producer finished a round: when each batch's first publish started, how long until it was accepted */
  | { t: 'round-done'; sentAt: Array<[string, number]>; acceptMs: number[]; retries: number }
  | { t: 'stopped' }
  | { t: 'failed'; error: string };

const port = parentPort!;
const post = (message: FromWorker) => port.postMessage(message);
const messages = (handler: (message: ToWorker) => void) => port.on('message', handler);

// ---- amqplib, typed here: its types are not a dependency of the workspace root ----

interface AmqpMessage {
  content: Buffer;
  properties: { messageId?: string };
}
interface AmqpChannel {
  assertQueue(queue: string, options: { durable: boolean; arguments: Record<string, unknown> }): Promise<unknown>;
  deleteQueue(queue: string): Promise<unknown>;
  prefetch(count: number): Promise<unknown>;
  consume(queue: string, onMessage: (msg: AmqpMessage | null) => void, options: { noAck: boolean }): Promise<unknown>;
  ack(msg: AmqpMessage): void;
}
interface AmqpConfirmChannel extends AmqpChannel {
  publish(exchange: string, key: string, body: Buffer, options: { persistent: boolean; messageId: string; contentType: string; mandatory: boolean }, confirmed: (err: unknown) => void): boolean;
}
interface AmqpConnection {
  createChannel(): Promise<AmqpChannel>;
  createConfirmChannel(): Promise<AmqpConfirmChannel>;
  close(): Promise<void>;
}
const amqplib = async () => ((await import('amqplib' as string)) as { default: { connect(url: string): Promise<AmqpConnection> } }).default;
const QUORUM = { durable: true, arguments: { 'x-queue-type': 'quorum' } };

// ---- producers ----

/** `concurrency` producers share each round's batches; a publish is retried until accepted, as the contract asks. */
function producer(publish: (batch: Batch) => Promise<void>, tenant: string, topic: string, concurrency: number, close?: () => Promise<void>): void {
  messages((message) => {
    if (message.t === 'stop') {
      void (close?.() ?? Promise.resolve()).then(() => post({ t: 'stopped' }));
      return;
    }
    void (async () => {
      const batches = makeBatches(tenant, topic, message.ids);
      const sentAt: Array<[string, number]> = [];
      const acceptMs: number[] = [];
      let retries = 0;
      let next = 0;
      const worker = async () => {
        while (next < batches.length) {
          const batch = batches[next++]!;
          const started = now();
          sentAt.push([batch.id, started]);
          for (let attempt = 0; ; attempt += 1) {
            try {
              await publish(batch);
              acceptMs.push(now() - started);
              break;
            } catch (err) {
              const retryable = err instanceof UnreachableError || (err instanceof ApiError && (err.status === 429 || err.status >= 500));
              if (!retryable || attempt >= 50) throw err;
              retries += 1;
              await sleep(50);
            }
          }
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      post({ t: 'round-done', sentAt, acceptMs, retries });
    })().catch((err: unknown) => post({ t: 'failed', error: String(err) }));
  });
  post({ t: 'ready' });
}

async function produceHttps(job: Extract<Job, { role: 'produce-https' }>): Promise<void> {
  const topic = topicClient({ baseUrl: job.baseUrl, caPem: job.caPem });
  producer(async (batch) => void (await topic.publish(job.sendKey, batch)), job.tenant, job.topic, job.concurrency);
}

async function produceAmqp(job: Extract<Job, { role: 'produce-amqp' }>): Promise<void> {
  const connection = await (await amqplib()).connect(job.amqpUrl);
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(job.queue, QUORUM);
  const publish = (batch: Batch) =>
    new Promise<void>((resolve, reject) => {
      channel.publish('', job.queue, Buffer.from(JSON.stringify(batch)), { persistent: true, messageId: batch.id, contentType: 'application/json', mandatory: true }, (err) =>
        err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
      );
    });
  producer(publish, job.tenant, job.topic, job.concurrency, () => connection.close().catch(() => undefined));
}

// ---- consumers ----

/** The file sink, telling the main thread about each batch once its write (append + fsync) resolved. */
function reporting(inner: Sink): Sink {
  return {
    description: inner.description,
    async write(batch, json) {
      await inner.write(batch, json);
      post({ t: 'written', id: batch.id, at: now() });
    },
    close: () => inner.close(),
  };
}

/** The importer agent as it ships (its defaults: the stream, writes in order, each batch checkpointed in a state file, then completed). */
async function consumeAgent(job: Extract<Job, { role: 'consume-agent' }>): Promise<void> {
  const sink = reporting(await fileSink(job.sinkFile, { maxBytes: 1 << 30 }));
  const agent = createAgent(
    { credentials: { kind: 'password', username: job.username, password: job.password }, subscription: 'default', receiveTimeoutSec: 5 },
    {
      pas: pasClient({ baseUrl: job.pasUrl, caPem: job.caPem }),
      pac: pacClient({ baseUrl: job.pacUrl, caPem: job.caPem }),
      topic: topicClient({ baseUrl: job.topicUrl, caPem: job.caPem }),
      sink,
      checkpoint: await fileCheckpoint(`${job.sinkFile}.checkpoint`),
      logger: silentLogger,
    },
  );
  agent.start();
  messages((message) => {
    if (message.t === 'stop') void agent.stop().then(() => post({ t: 'stopped' }));
  });
  post({ t: 'ready' });
}

/**
 * A streaming consumer: the stream endpoint, writes pipelined through the file sink (which keeps
 * them in arrival order), each batch completed only after its own write resolved.
 */
async function consumeStream(job: Extract<Job, { role: 'consume-stream' }>): Promise<void> {
  const topic = topicClient({ baseUrl: job.baseUrl, caPem: job.caPem });
  const sink = reporting(await fileSink(job.sinkFile, { maxBytes: 1 << 30 }));
  const stop = new AbortController();
  const seen = new Set<string>();
  const settling = new Set<Promise<void>>();
  const loop = (async () => {
    while (!stop.signal.aborted) {
      try {
        for await (const m of topic.stream(job.listenKey, job.tenant, job.topic, 'default', { prefetch: job.prefetch, timeoutSec: 300, signal: stop.signal })) {
          const first = !seen.has(m.batch.id);
          seen.add(m.batch.id);
          const settled: Promise<void> = (first ? sink.write(m.batch, m.batchJson) : Promise.resolve())
            .then(() => topic.complete(job.listenKey, job.tenant, job.topic, 'default', m.message_id, m.lock_token))
            .catch(() => undefined)
            .finally(() => settling.delete(settled));
          settling.add(settled);
        }
      } catch {
        if (!stop.signal.aborted) await sleep(100);
      }
    }
  })();
  messages((message) => {
    if (message.t !== 'stop') return;
    stop.abort();
    void (async () => {
      await loop;
      await Promise.all(settling);
      await sink.close();
      post({ t: 'stopped' });
    })();
  });
  post({ t: 'ready' });
}

/** The ceiling's consumer: plain amqplib, manual ack after the body is appended to a file (and fsync'd). */
async function consumeAmqp(job: Extract<Job, { role: 'consume-amqp' }>): Promise<void> {
  const connection = await (await amqplib()).connect(job.amqpUrl);
  const channel = await connection.createChannel();
  await channel.assertQueue(job.queue, QUORUM);
  await channel.prefetch(job.prefetch);
  const file = await open(job.file, 'a', 0o640);
  const newline = Buffer.from('\n');
  let queue: Promise<void> = Promise.resolve();
  await channel.consume(
    job.queue,
    (msg) => {
      if (!msg) return;
      queue = queue.then(async () => {
        await file.appendFile(Buffer.concat([msg.content, newline]));
        if (job.fsync) await file.sync();
        channel.ack(msg);
        post({ t: 'written', id: String(msg.properties.messageId), at: now() });
      });
    },
    { noAck: false },
  );
  messages((message) => {
    if (message.t !== 'stop') return;
    void (async () => {
      await queue;
      await channel.deleteQueue(job.queue).catch(() => undefined);
      await connection.close().catch(() => undefined);
      await file.close();
      post({ t: 'stopped' });
    })();
  });
  post({ t: 'ready' });
}

const job = workerData as Job;
const roles = { 'produce-https': produceHttps, 'produce-amqp': produceAmqp, 'consume-stream': consumeStream, 'consume-agent': consumeAgent, 'consume-amqp': consumeAmqp };
(roles[job.role] as (job: Job) => Promise<void>)(job).catch((err: unknown) => post({ t: 'failed', error: String(err) }));
