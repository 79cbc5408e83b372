import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import type { Batch } from '@keyway/contracts';
import { httpsCall, httpsSink, jsonOf, retryAfterMs, type HttpsAnswer } from './https-call.ts';
import type { Sink } from './sink.ts';

const gzip = promisify(gzipCallback);

export const DEFAULT_AUTHORITY_URL = 'https://login.microsoftonline.com';
const SCOPE = 'https://monitor.azure.com/.default';
const API_VERSION = '2023-01-01';
/** The Logs Ingestion API takes at most 1 MB a call (Azure Monitor service limits); larger batches are split. */
const MAX_CALL_BYTES = 1_000_000;

export interface SentinelSinkOptions {
  /** Entra ID tenant (directory) id of the app registration */
  tenantId: string;
  clientId: string;
  /** the app's client secret; sent only in the token request's body, never logged or put in an error */
  clientSecret: string;
  /** Entra ID authority; default https://login.microsoftonline.com (another for a sovereign cloud) */
  authorityUrl?: string;
  /** the data collection endpoint (or the DCR's logs ingestion endpoint), https */
  endpoint: string;
  /** the data collection rule's immutable id (dcr-…) */
  dcrId: string;
  /** the DCR's stream, e.g. Custom-KeywayEvents */
  stream: string;
  /** PEM CA(s) both endpoints' certificates chain to; default: Node's bundled CAs */
  ca?: string;
  /** attempts of one call while Azure answers 429 or 5xx or the connection fails; default 5 */
  maxAttempts?: number;
  /** wait before a retry when Azure names none (Retry-After), doubling; default 1 s */
  backoffMs?: number;
  /** a Retry-After longer than this fails the batch at once (the agent pulls it again later); default 60 s */
  maxRetryAfterMs?: number;
  /** largest call body before gzip; default MAX_CALL_BYTES */
  maxCallBytes?: number;
  /** a call (token or ingestion) not fully answered within this fails (ingestion tries again as for 5xx); default 30 s */
  timeoutMs?: number;
}

export class SentinelError extends Error {
  override name = 'SentinelError';
  constructor(
    readonly status: number | undefined,
    message: string,
    /** the wait the answer's Retry-After asked for, if it named one */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/**
 * One row of the DCR stream per record. The stream declares these columns: TimeGenerated (datetime,
 * the batch's creation time), KeywayTenant, KeywayTopic, KeywayBatch (string), KeywaySeq (long),
 * Event (dynamic: the record as it is); the DCR's transformKql may reshape them for its table. Azure
 * truncates a field value over 64 KB (Azure Monitor service limits, Logs Ingestion API): a larger
 * record is stored cut short, and the call still answers 204.
 */
const rowOf = (batch: Batch, record: unknown) =>
  JSON.stringify({
    TimeGenerated: new Date(batch.createdAt).toISOString(),
    KeywayTenant: batch.tenant,
    KeywayTopic: batch.topic,
    KeywayBatch: batch.id,
    KeywaySeq: batch.seq,
    Event: record,
  });

/** The rows as JSON arrays of at most `maxBytes` each, in order. */
function splitRows(rows: string[], maxBytes: number): string[] {
  const bodies: string[] = [];
  let current: string[] = [];
  let size = 2; // "[" and "]"
  for (const row of rows) {
    const rowBytes = Buffer.byteLength(row);
    if (rowBytes + 2 > maxBytes) throw new SentinelError(undefined, `a record is ${rowBytes} bytes as a row, more than the ${maxBytes} bytes a Logs Ingestion call takes`);
    if (current.length > 0 && size + 1 + rowBytes > maxBytes) {
      bodies.push(`[${current.join(',')}]`);
      current = [];
      size = 2;
    }
    size += rowBytes + (current.length > 0 ? 1 : 0);
    current.push(row);
  }
  if (current.length > 0) bodies.push(`[${current.join(',')}]`);
  return bodies;
}

/** Azure's error answer `{"error":{"code","message"}}` (or Entra ID's `{error, error_description}`), short. */
function reasonOf(answer: HttpsAnswer): string {
  const body = jsonOf(answer) as { error?: unknown; error_description?: unknown } | undefined;
  const error = body?.error;
  if (error !== null && typeof error === 'object') {
    const { code, message } = error as { code?: unknown; message?: unknown };
    return `${String(code ?? '')}: ${String(message ?? '')}`.slice(0, 300);
  }
  // Entra ID's description names the failure (AADSTS…), never the secret
  if (typeof error === 'string') return `${error}${typeof body?.error_description === 'string' ? `: ${body.error_description.split('\r\n')[0]}` : ''}`.slice(0, 300);
  return '';
}

const retryable = (status: number) => status === 429 || status >= 500;

/**
 * Microsoft Sentinel / Azure Monitor Logs Ingestion API: an Entra ID client-credentials token (scope
 * monitor.azure.com, kept until 5 minutes before it expires) and POST
 * {endpoint}/dataCollectionRules/{dcrId}/streams/{stream}?api-version=2023-01-01, a gzip'd JSON array
 * of rows, split so that no call passes 1 MB before compression.
 *
 * Durability: write() resolves only once every call of the batch was answered 204 (Azure took the
 * rows). 429 and 5xx (of a call or of the token request), timeouts and connection failures are
 * tried again after their Retry-After (else a doubling back-off) up to `maxAttempts`; a 401 fetches a
 * new token once; anything else (400, 403, 413), attempts used up or close() during a retry's wait
 * rejects, and the agent abandons the batch so it is delivered again: the calls of it that Azure
 * had taken then reach the table twice (at least once; KeywayBatch and KeywaySeq tell them apart).
 */
export function sentinelSink(options: SentinelSinkOptions): Sink {
  const endpoint = new URL(options.endpoint);
  const authority = new URL(options.authorityUrl ?? DEFAULT_AUTHORITY_URL);
  // the bearer token and the client secret travel on these: never in clear
  if (endpoint.protocol !== 'https:' || authority.protocol !== 'https:') throw new Error('Sentinel endpoint and authority URLs must be https://');
  const ingestUrl = new URL(
    `${endpoint.pathname.replace(/\/$/, '')}/dataCollectionRules/${encodeURIComponent(options.dcrId)}/streams/${encodeURIComponent(options.stream)}?api-version=${API_VERSION}`,
    endpoint,
  );
  const tokenUrl = new URL(`${authority.pathname.replace(/\/$/, '')}/${encodeURIComponent(options.tenantId)}/oauth2/v2.0/token`, authority);
  const agent = new https.Agent({ keepAlive: true, ca: options.ca, minVersion: 'TLSv1.2' });
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxAttempts = options.maxAttempts ?? 5;
  const backoffMs = options.backoffMs ?? 1_000;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  const maxCallBytes = options.maxCallBytes ?? MAX_CALL_BYTES;

  let token: { value: string; refreshAt: number } | undefined;
  let tokenRequest: Promise<string> | undefined;

  async function requestToken(): Promise<string> {
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: options.clientId, client_secret: options.clientSecret, scope: SCOPE }).toString();
    const answer = await httpsCall(tokenUrl, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(form), accept: 'application/json' },
      body: form,
      timeoutMs,
    });
    const body = jsonOf(answer) as { access_token?: unknown; expires_in?: unknown } | undefined;
    if (answer.status !== 200 || typeof body?.access_token !== 'string') {
      throw new SentinelError(answer.status, `Entra ID token request answered ${answer.status}${reasonOf(answer) ? ` ${reasonOf(answer)}` : ''}`, retryAfterMs(answer));
    }
    const lifetimeMs = Number(body.expires_in) * 1000 || 0;
    // renewed 5 minutes before it expires, or halfway through a shorter life
    token = { value: body.access_token, refreshAt: Date.now() + Math.max(lifetimeMs - 300_000, lifetimeMs / 2) };
    return body.access_token;
  }

  /** the cached token, or one fetched (one request at a time however many calls wait) */
  function bearer(): Promise<string> {
    if (token && Date.now() < token.refreshAt) return Promise.resolve(token.value);
    tokenRequest ??= requestToken().finally(() => {
      tokenRequest = undefined;
    });
    return tokenRequest;
  }

  /** aborted by close(): a retry waiting for its turn fails the batch at once instead of holding the shutdown */
  const closing = new AbortController();

  /**
   * One ingestion call, tried again on 429, 5xx (of the call or of the token request), a connection
   * failure or a timeout, after the answer's Retry-After or else a doubling back-off.
   */
  async function upload(json: string): Promise<void> {
    const body = await gzip(Buffer.from(json, 'utf8'));
    let renewed = false;
    for (let attempt = 1; ; attempt += 1) {
      if (closing.signal.aborted) throw new SentinelError(undefined, 'Sentinel sink closed before the batch was written');
      let failure: Error;
      try {
        const accessToken = await bearer();
        const answer = await httpsCall(ingestUrl, {
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': body.length },
          body,
          timeoutMs,
        });
        if (answer.status === 204) return;
        failure = new SentinelError(answer.status, `Logs Ingestion answered ${answer.status}${reasonOf(answer) ? ` ${reasonOf(answer)}` : ''}`, retryAfterMs(answer));
        if (answer.status === 401 && !renewed) {
          // expired or revoked early: one fresh token, then the usual rules
          renewed = true;
          token = undefined;
          attempt -= 1;
          continue;
        }
        if (!retryable(answer.status)) throw failure;
      } catch (err) {
        if (err instanceof SentinelError && (err.status === undefined || !retryable(err.status))) throw err;
        failure = err as Error;
      }
      if (attempt >= maxAttempts) throw failure;
      const wait = (failure instanceof SentinelError ? failure.retryAfterMs : undefined) ?? backoffMs * 2 ** (attempt - 1);
      if (wait > maxRetryAfterMs) throw failure;
      try {
        await sleep(wait, undefined, { signal: closing.signal });
      } catch {
        throw new SentinelError(failure instanceof SentinelError ? failure.status : undefined, `Sentinel sink closed while waiting to retry: ${failure.message}`);
      }
    }
  }

  return httpsSink(
    `Sentinel Logs Ingestion ${endpoint.origin} (DCR ${options.dcrId}, stream ${options.stream})`,
    agent,
    async (batch) => {
      // one call after the other: a refused call stops the batch instead of sending the rest
      for (const json of splitRows(
        batch.records.map((record) => rowOf(batch, record)),
        maxCallBytes,
      ))
        await upload(json);
    },
    () => closing.abort(),
  );
}
