import type { Readable } from 'node:stream';
import type { AxiosResponse } from 'axios';
import { ErrorBody, PublishResponse, ReceivedMessage, type Batch } from '@keyway/contracts';
import { ApiError, call, createHttp, send, toApiError, UnreachableError, type ClientOptions } from './http.ts';

export interface StreamOptions {
  /** messages locked and unsettled at once (1..500; server default 50) */
  prefetch?: number;
  /** seconds the stream stays open (1..300; server default 60) */
  timeoutSec?: number;
  /** aborting ends the iteration and closes the stream; the server then returns every unsettled message to the queue */
  signal?: AbortSignal;
}

const STREAM_DEFAULT_TIMEOUT_SEC = 60;
/** how long past its timeout a stream may take to end before the connection is taken for dead */
const STREAM_GRACE_SEC = 30;
/** a stream that fails after its 200 ends with an ErrorBody line; only an outage is expected there */
/** the HTTP status of an error an open stream ends with (an ErrorBody line after the 200) */
const STREAM_ERROR_STATUS: Record<string, number> = { invalid_token: 401, insufficient_scope: 403, subscription_not_found: 404, temporarily_unavailable: 503 };
const streamErrorStatus = (code: string) => STREAM_ERROR_STATUS[code] ?? 500;

/** the ApiError for a streamed answer that is not 200 (its body is an ordinary error body) */
async function refusal(response: AxiosResponse, body: Readable): Promise<Error> {
  let text = '';
  try {
    body.setEncoding('utf8');
    for await (const chunk of body) text += chunk as string;
  } catch (err) {
    return new UnreachableError('topic', (err as { code?: string }).code);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // not JSON: toApiError reports the status alone
  }
  return toApiError({ ...response, data });
}

/** newline-delimited lines of a text stream; a trailing line without newline is yielded too */
async function* lines(body: Readable): AsyncGenerator<string> {
  body.setEncoding('utf8');
  let rest = '';
  for await (const chunk of body) {
    rest += chunk as string;
    // one copy of the unfinished tail per chunk, not one per line
    let start = 0;
    for (let newline = rest.indexOf('\n'); newline >= 0; newline = rest.indexOf('\n', start)) {
      yield rest.slice(start, newline);
      start = newline + 1;
    }
    rest = rest.slice(start);
  }
  if (rest !== '') yield rest;
}

export function topicClient(options: ClientOptions) {
  const http = createHttp({ ...options, timeoutMs: options.timeoutMs ?? 75_000 });
  const base = (tenant: string, topic: string) => `/tenants/${encodeURIComponent(tenant)}/topics/${encodeURIComponent(topic)}`;
  const subscription = (tenant: string, topic: string, sub: string) => `${base(tenant, topic)}/subscriptions/${encodeURIComponent(sub)}`;
  // Azure Service Bus names the dead-letter queue as a sub-entity; the `$` goes unencoded
  const deadLetterQueue = (tenant: string, topic: string, sub: string) => `${subscription(tenant, topic, sub)}/$deadletterqueue`;
  const message = (entity: string, id: string, lockToken: string) => `${entity}/messages/${encodeURIComponent(id)}/${encodeURIComponent(lockToken)}`;
  const auth = (sasKey: string) => ({ authorization: sasKey });
  const settle = async (method: 'delete' | 'put' | 'post', path: string, sasKey: string) => {
    const response = await send(() => http.request({ method, url: path, headers: auth(sasKey) }), 'topic');
    if (response.status < 200 || response.status >= 300) throw toApiError(response);
  };
  /** peek-lock receive from an entity (subscription or its dead-letter queue); null when nothing arrived */
  const receiveFrom = async (entity: string, sasKey: string, timeoutSec: number, signal?: AbortSignal): Promise<ReceivedMessage | null> => {
    const response = await send(() => http.post(`${entity}/messages/head`, undefined, { params: { timeout: timeoutSec }, headers: auth(sasKey), signal }), 'topic');
    if (response.status === 204) return null;
    if (response.status !== 201) throw toApiError(response);
    return ReceivedMessage.parse(response.data);
  };
  const settlers = (entity: (tenant: string, topic: string, sub: string) => string) => ({
    complete: (sasKey: string, tenant: string, topic: string, sub: string, id: string, lockToken: string) =>
      settle('delete', message(entity(tenant, topic, sub), id, lockToken), sasKey),
    abandon: (sasKey: string, tenant: string, topic: string, sub: string, id: string, lockToken: string) =>
      settle('put', message(entity(tenant, topic, sub), id, lockToken), sasKey),
    renewLock: (sasKey: string, tenant: string, topic: string, sub: string, id: string, lockToken: string) =>
      settle('post', message(entity(tenant, topic, sub), id, lockToken), sasKey),
  });

  /**
   * Streaming peek-lock receive: each message is locked with its own token and settled with
   * complete / abandon / renewLock as usual; settling gives the stream credit for the next one.
   * Ends when the server ends the stream (after timeoutSec) or when the signal aborts; throws
   * ApiError for a refusal or a failure the server reports, UnreachableError when the connection breaks.
   */
  async function* stream(sasKey: string, tenant: string, topic: string, sub: string, streamOptions: StreamOptions = {}): AsyncGenerator<ReceivedMessage> {
    const { prefetch, timeoutSec, signal } = streamOptions;
    // No idle timeout (a consumer may take its time between messages); the whole stream is bounded instead.
    const deadline = AbortSignal.timeout(((timeoutSec ?? STREAM_DEFAULT_TIMEOUT_SEC) + STREAM_GRACE_SEC) * 1000);
    const abort = signal ? AbortSignal.any([signal, deadline]) : deadline;
    let response: AxiosResponse<Readable>;
    try {
      response = await send(
        () =>
          http.post<Readable>(`${subscription(tenant, topic, sub)}/messages/stream`, undefined, {
            params: { prefetch, timeout: timeoutSec },
            headers: auth(sasKey),
            signal: abort,
            responseType: 'stream',
            timeout: 0,
          }),
        'topic',
      );
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
    const body = response.data;
    /** the next line; undefined at the end; UnreachableError when the connection breaks */
    const chunks = lines(body);
    const next = async (): Promise<string | undefined> => {
      try {
        const result = await chunks.next();
        return result.done ? undefined : result.value;
      } catch (err) {
        throw new UnreachableError('topic', (err as { code?: string }).code);
      }
    };
    try {
      if (response.status !== 200) throw await refusal(response, body);
      for (let line = await next(); line !== undefined; line = await next()) {
        if (line === '') continue; // heartbeat
        const value: unknown = JSON.parse(line);
        const error = ErrorBody.safeParse(value);
        if (error.success) throw new ApiError(streamErrorStatus(error.data.error), error.data.error, error.data.error_description ?? '');
        yield ReceivedMessage.parse(value);
      }
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    } finally {
      body.destroy();
    }
  }

  return {
    publish: (sasKey: string, batch: Batch) =>
      call(() => http.post(`${base(batch.tenant, batch.topic)}/messages`, batch, { headers: auth(sasKey) }), PublishResponse, 'topic'),
    /** internal (mTLS, audit service only): publish as Keyway itself, through the same checks and quotas as `publish` */
    publishInternal: (batch: Batch) => call(() => http.post(`/internal/v1${base(batch.tenant, batch.topic)}/messages`, batch), PublishResponse, 'topic'),
    /** peek-lock receive; null when nothing arrived within timeoutSec */
    receive: (sasKey: string, tenant: string, topic: string, sub: string, timeoutSec: number, signal?: AbortSignal) =>
      receiveFrom(subscription(tenant, topic, sub), sasKey, timeoutSec, signal),
    stream,
    ...settlers(subscription),
    /** the subscription's dead-letter queue (`$deadletterqueue`): receive and settle the same way */
    deadLetter: {
      receive: (sasKey: string, tenant: string, topic: string, sub: string, timeoutSec: number, signal?: AbortSignal) =>
        receiveFrom(deadLetterQueue(tenant, topic, sub), sasKey, timeoutSec, signal),
      ...settlers(deadLetterQueue),
    },
  };
}
export type TopicClient = ReturnType<typeof topicClient>;
