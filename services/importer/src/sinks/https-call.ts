import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { Batch } from '@keyway/contracts';
import type { Sink } from './sink.ts';

export interface HttpsAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Largest answer body read by default: the sinks' answers are short JSON (a status, an error). */
export const DEFAULT_MAX_ANSWER_BYTES = 1024 * 1024;

export interface HttpsCallOptions {
  method: string;
  agent: https.Agent;
  headers: Record<string, string | number>;
  body?: Buffer | string;
  /** the whole exchange (connect, send, the full answer) must end within this; a slow or trickling server cannot hold a write */
  timeoutMs: number;
  /** an answer body past this many bytes fails the call (a server cannot fill the importer's memory); default DEFAULT_MAX_ANSWER_BYTES */
  maxAnswerBytes?: number;
}

/**
 * One HTTPS request, its whole answer collected, within an overall deadline and a size cap. Errors
 * name the host only (URLs and headers may carry secrets).
 */
export function httpsCall(url: URL, options: HttpsCallOptions): Promise<HttpsAnswer> {
  const maxAnswerBytes = options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES;
  return new Promise((resolve, reject) => {
    let settled = false;
    // the first outcome wins: our own error before the socket's, which destroy() causes
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      reject(err);
      request.destroy();
    };
    const request = https.request(url, { method: options.method, agent: options.agent, headers: options.headers }, (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxAnswerBytes) return fail(new Error(`${url.host} answered more than ${maxAnswerBytes} bytes`));
        chunks.push(chunk);
      });
      response.on('error', fail);
      response.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) });
      });
    });
    const deadline = setTimeout(() => fail(new Error(`${url.host} did not answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    request.on('error', fail);
    request.end(options.body);
  });
}

/** The JSON body of an answer, or undefined when it is not JSON. */
export function jsonOf(answer: HttpsAnswer): unknown {
  try {
    return JSON.parse(answer.body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, in ms from now; undefined when absent or unreadable. */
export function retryAfterMs(answer: HttpsAnswer, now = Date.now()): number | undefined {
  const value = answer.headers['retry-after'];
  if (typeof value !== 'string') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The Sink of an HTTPS sink: `send` writes one non-empty batch (an empty one has nothing to make
 * durable); close() runs `stop` (e.g. to cut a retry's wait short), waits for the writes in flight, then
 * destroys the agent, so a shutdown never cuts a write it has begun.
 */
export function httpsSink(description: string, agent: https.Agent, send: (batch: Batch) => Promise<void>, stop?: () => void): Sink {
  const inFlight = new Set<Promise<void>>();
  return {
    description,
    write(batch) {
      if (batch.records.length === 0) return Promise.resolve();
      const pending = send(batch);
      inFlight.add(pending);
      const forget = () => inFlight.delete(pending);
      pending.then(forget, forget);
      return pending;
    },
    async close() {
      stop?.();
      await Promise.allSettled(inFlight);
      agent.destroy();
    },
  };
}
