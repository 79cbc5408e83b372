import https from 'node:https';
import type { Batch } from '@keyway/contracts';
import { DEFAULT_MAX_ANSWER_BYTES, httpsCall, httpsSink, jsonOf } from './https-call.ts';
import type { Sink } from './sink.ts';

export type ElasticsearchAuth = { apiKey: string } | { username: string; password: string };

export interface ElasticsearchSinkOptions {
  /** the cluster's base URL (https only), e.g. https://es.example:9200 */
  url: string;
  /** an API key (Elasticsearch, sent as `ApiKey <key>`) or a user and password (basic, Elasticsearch and OpenSearch); never logged */
  auth: ElasticsearchAuth;
  /** the index or data stream the documents are created in */
  index: string;
  /** PEM CA(s) the cluster's certificate chains to; default: Node's bundled CAs */
  ca?: string;
  /** a _bulk request not fully answered within this fails; default 30 s */
  timeoutMs?: number;
}

export class ElasticsearchError extends Error {
  override name = 'ElasticsearchError';
  constructor(
    readonly status: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A record key Elasticsearch or this sink claims: `_`-prefixed names (metadata fields such as `_id`,
 * `_index`, `_source`, which a document may not carry), `keyway` (and `keyway.…`, which the cluster
 * reads as inside it), and the empty name (refused by the cluster).
 */
const claimed = (key: string) => key === '' || key.startsWith('_') || key === 'keyway' || key.startsWith('keyway.');

/**
 * The document of a record: the record's own fields at the top, `@timestamp` (the record's, else the
 * batch's creation time: a data stream requires one) and `keyway` { tenant, topic, batch, seq }. A
 * claimed key K (see `claimed`) is stored as `record_K` (with more `record_` while that name is
 * taken), so such a record is neither refused forever nor overwritten. A record that is not an
 * object goes into `record`.
 */
function documentOf(batch: Batch, record: unknown): Record<string, unknown> {
  const fields = record !== null && typeof record === 'object' && !Array.isArray(record) ? (record as Record<string, unknown>) : { record };
  const document: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (!claimed(key)) document[key] = value;
  }
  for (const [key, value] of Object.entries(fields)) {
    if (!claimed(key)) continue;
    let name = `record_${key}`;
    while (name in document || name in fields) name = `record_${name}`;
    document[name] = value;
  }
  document['@timestamp'] = fields['@timestamp'] ?? new Date(batch.createdAt).toISOString();
  document.keyway = { tenant: batch.tenant, topic: batch.topic, batch: batch.id, seq: batch.seq };
  return document;
}

/** The document's _id: the batch id and the record's place in it, so a batch delivered again creates nothing new. */
const documentId = (batch: Batch, index: number) => `${batch.id}:${index}`;

/**
 * `create` actions (never overwrite) with their documents, one JSON per line, a final newline included
 * (_bulk requires it). No `_index` per action: the index is in the path, so a cluster with
 * `rest.action.multi.allow_explicit_index: false` takes it.
 */
function bulkBody(batch: Batch): string {
  return batch.records.map((record, i) => `${JSON.stringify({ create: { _id: documentId(batch, i) } })}\n${JSON.stringify(documentOf(batch, record))}\n`).join('');
}

/**
 * An error's type and, when its reason names one, the field: never the reason itself, which may
 * quote a document's values (a mapping error previews the value it could not parse).
 */
function describeError(error: { type?: unknown; reason?: unknown } | undefined): string {
  if (!error || typeof error !== 'object') return '';
  const type = typeof error.type === 'string' ? error.type : 'unknown error';
  const field = typeof error.reason === 'string' ? /field \[([^\]]{1,200})\]/i.exec(error.reason)?.[1] : undefined;
  return field === undefined ? type : `${type} (field ${field})`;
}

interface BulkItem {
  status?: number;
  error?: { type?: string; reason?: string };
}

/**
 * Elasticsearch / OpenSearch `_bulk`: one request per batch, each record a `create` with an _id made of
 * the batch id and its index, into ES_INDEX (an index or a data stream). The index is not refreshed.
 *
 * Durability: write() resolves only on a 200 whose `items` are one per record, each created (201) or
 * already there (409 version_conflict_engine_exception of a create: a redelivered batch whose
 * documents were stored before). Any other item (429 rejected, 5xx, 400 mapping error), another
 * status, an answer that is not JSON, a connection failure or a timeout rejects with the first
 * item's error type (and field), and the agent abandons the batch so it is delivered again; its
 * documents already created then answer 409 and are not doubled.
 */
export function elasticsearchSink(options: ElasticsearchSinkOptions): Sink {
  const base = new URL(options.url);
  // the credentials authenticate every request: they never travel in clear
  if (base.protocol !== 'https:') throw new Error('Elasticsearch URL must be https://');
  const endpoint = new URL(`${base.pathname.replace(/\/$/, '')}/${encodeURIComponent(options.index)}/_bulk`, base);
  const authorization = 'apiKey' in options.auth ? `ApiKey ${options.auth.apiKey}` : `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`, 'utf8').toString('base64')}`;
  const agent = new https.Agent({ keepAlive: true, ca: options.ca, minVersion: 'TLSv1.2' });
  const timeoutMs = options.timeoutMs ?? 30_000;

  async function bulk(batch: Batch): Promise<void> {
    const body = Buffer.from(bulkBody(batch), 'utf8');
    const answer = await httpsCall(endpoint, {
      method: 'POST',
      agent,
      headers: { authorization, 'content-type': 'application/x-ndjson', accept: 'application/json', 'content-length': body.length },
      body,
      timeoutMs,
      // an item is a few hundred bytes, more with an error (ES shortens its reasons)
      maxAnswerBytes: DEFAULT_MAX_ANSWER_BYTES + 4096 * batch.records.length,
    });
    const json = jsonOf(answer) as { items?: Array<Record<string, BulkItem>>; error?: { type?: string; reason?: string } } | undefined;
    if (answer.status !== 200) {
      const reason = describeError(json?.error);
      throw new ElasticsearchError(answer.status, `Elasticsearch _bulk answered ${answer.status}${reason ? `: ${reason}` : ''}`);
    }
    if (!Array.isArray(json?.items)) throw new ElasticsearchError(200, 'Elasticsearch _bulk answered 200 without items');
    const items = json.items.map((item) => item?.create ?? {});
    if (items.length !== batch.records.length) throw new ElasticsearchError(200, `Elasticsearch _bulk answered ${items.length} items for ${batch.records.length} documents`);
    const failed = items.filter((item) => item.status !== 201 && !(item.status === 409 && item.error?.type === 'version_conflict_engine_exception'));
    if (failed.length === 0) return;
    const [first] = failed as [BulkItem];
    throw new ElasticsearchError(first.status, `Elasticsearch refused ${failed.length} of ${items.length} documents; first: ${first.status ?? 'no status'} ${describeError(first.error)}`.trim());
  }

  return httpsSink(`Elasticsearch ${endpoint.origin} (index ${options.index})`, agent, bulk);
}
