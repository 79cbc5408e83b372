import { open } from 'node:fs/promises';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { ApiError, pacClient, pasClient, topicClient, UnreachableError } from '@keyway/clients';
import type { Batch } from '@keyway/contracts';
import { createAgent, fileCheckpoint, fileSink, type Sink } from '@keyway/importer';
import { silentLogger } from '@keyway/kit';
import { amqplib, QUORUM } from './delivery-amqp.ts';
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
  | { role: 'consume-amqp'; amqpUrl: string; queue: string; file: string; fsync: boolean; prefetch: number }
  | { role: 'produce-relay'; url: string; caPem: string; concurrency: number }
  | { role: 'consume-relay'; url: string; caPem: string; file: string };

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

/** The relay floor's producers: node:https, keep-alive, the batch serialised per publish as everywhere else. */
async function produceRelay(job: Extract<Job, { role: 'produce-relay' }>): Promise<void> {
  const agent = new https.Agent({ keepAlive: true, ca: job.caPem });
  const publish = (batch: Batch) =>
    new Promise<void>((resolve, reject) => {
      const body = Buffer.from(JSON.stringify(batch));
      const request = https.request(`${job.url}/publish`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length, 'x-batch-id': batch.id } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new UnreachableError('relay', String(res.statusCode)))));
      });
      request.on('error', reject);
      request.end(body);
    });
  producer(publish, '', '', job.concurrency, async () => agent.destroy());
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

/**
 * The relay floor's consumer: one stream, each batch appended + fsync'd in arrival order (as the
 * raw ceiling's consumer does), the acks of every batch written while one ack request was in flight
 * sent together in the next.
 */
async function consumeRelay(job: Extract<Job, { role: 'consume-relay' }>): Promise<void> {
  const agent = new https.Agent({ keepAlive: true, ca: job.caPem });
  const file = await open(job.file, 'a', 0o640);
  const newline = Buffer.from('\n');
  let writes: Promise<void> = Promise.resolve();
  const ready: string[] = [];
  let acking = false;
  const ack = () => {
    if (acking || ready.length === 0) return;
    acking = true;
    const body = ready.splice(0).join(',');
    const request = https.request(`${job.url}/ack`, { method: 'POST', agent, headers: { 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => {
        acking = false;
        ack();
      });
    });
    request.end(body);
  };
  const stream = https.request(`${job.url}/stream`, { method: 'POST', agent, headers: { 'content-length': 0 } }, (res) => {
    let pending: Buffer[] = [];
    res.on('data', (chunk: Buffer) => {
      let start = 0;
      for (let end = chunk.indexOf(10); end !== -1; end = chunk.indexOf(10, start)) {
        const line = pending.length ? Buffer.concat([...pending, chunk.subarray(start, end)]) : chunk.subarray(start, end);
        pending = [];
        start = end + 1;
        const tab1 = line.indexOf(9);
        const tab2 = line.indexOf(9, tab1 + 1);
        const tag = line.subarray(0, tab1).toString();
        const id = line.subarray(tab1 + 1, tab2).toString();
        const content = line.subarray(tab2 + 1);
        writes = writes.then(async () => {
          await file.appendFile(Buffer.concat([content, newline]));
          await file.sync();
          post({ t: 'written', id, at: now() });
          ready.push(tag);
          ack();
        });
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
    });
  });
  stream.end();
  messages((message) => {
    if (message.t !== 'stop') return;
    void (async () => {
      await writes;
      stream.destroy();
      agent.destroy();
      await file.close();
      post({ t: 'stopped' });
    })();
  });
  post({ t: 'ready' });
}

const job = workerData as Job;
const roles = {
  'produce-https': produceHttps,
  'produce-amqp': produceAmqp,
  'consume-stream': consumeStream,
  'consume-agent': consumeAgent,
  'consume-amqp': consumeAmqp,
  'produce-relay': produceRelay,
  'consume-relay': consumeRelay,
};
(roles[job.role] as (job: Job) => Promise<void>)(job).catch((err: unknown) => post({ t: 'failed', error: String(err) }));
