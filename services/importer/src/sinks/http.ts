import https from 'node:https';
import { hostname as osHostname } from 'node:os';
import type { Batch } from '@keyway/contracts';
import { httpsCall, httpsSink, jsonOf } from './https-call.ts';
import type { Sink } from './sink.ts';

export interface HecSinkOptions {
  /** the collector's base URL (https only), e.g. https://splunk.example:8088 */
  url: string;
  /** HEC token; sent only in the Authorization header, never logged or put in an error */
  token: string;
  /** PEM CA(s) the collector's certificate chains to; default: Node's bundled CAs */
  ca?: string;
  /** Splunk index; unset = the token's default index */
  index?: string;
  /** `host` of each event; default os.hostname() */
  host?: string;
  /** a request not fully answered within this fails; default 30 s */
  timeoutMs?: number;
}

/** Splunk's HEC answers `{"text":"Success","code":0}`; any other code is a refusal. */
const HEC_SUCCESS = 0;

/**
 * One HEC event object per record, concatenated (HEC's batch format, no array, no separator needed):
 * `time` is the batch's creation time in epoch seconds, `fields` are indexed fields a search can
 * filter on.
 */
function hecEvents(batch: Batch, options: { host: string; index?: string }): string {
  const time = Date.parse(batch.createdAt) / 1000;
  const fields = { tenant: batch.tenant, topic: batch.topic, batch: batch.id };
  return batch.records
    .map((event) =>
      JSON.stringify({
        time,
        host: options.host,
        source: 'keyway',
        sourcetype: `keyway:${batch.topic}`,
        ...(options.index === undefined ? {} : { index: options.index }),
        event,
        fields,
      }),
    )
    .join('');
}

export class HecError extends Error {
  override name = 'HecError';
  constructor(
    readonly status: number | undefined,
    readonly hecCode: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Splunk HTTP Event Collector: POST {url}/services/collector/event with `Authorization: Splunk
 * <token>`, one request per batch.
 *
 * Durability: write() resolves only on a 2xx whose JSON body has `code` 0, HEC's word that the
 * events were received. Any other answer, a 5xx, a connection failure or a timeout rejects, and the
 * agent abandons the batch so it is delivered again. (HEC's stronger "indexed" guarantee needs
 * indexer acknowledgment on the token, polled on /services/collector/ack; this sink does not use it.)
 */
export function hecSink(options: HecSinkOptions): Sink {
  const base = new URL(options.url);
  // The token authenticates every request: it never travels in clear.
  if (base.protocol !== 'https:') throw new Error('HEC URL must be https://');
  const endpoint = new URL(`${base.pathname.replace(/\/$/, '')}/services/collector/event`, base);
  const agent = new https.Agent({ keepAlive: true, ca: options.ca, minVersion: 'TLSv1.2' });
  const timeoutMs = options.timeoutMs ?? 30_000;
  const format = { host: options.host ?? osHostname(), index: options.index };
  const authorization = `Splunk ${options.token}`;

  const post = async (body: string) => {
    const answer = await httpsCall(endpoint, {
      method: 'POST',
      agent,
      headers: { authorization, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      body,
      timeoutMs,
    });
    const hec = parseAnswer(jsonOf(answer));
    if (answer.status >= 200 && answer.status < 300 && hec?.code === HEC_SUCCESS) return;
    throw new HecError(answer.status, hec?.code, `HEC answered ${answer.status}${hec ? ` code ${hec.code}: ${hec.text}` : ''}`);
  };

  return httpsSink(`HEC ${endpoint.href}${options.index ? ` (index ${options.index})` : ''}`, agent, (batch) => post(hecEvents(batch, format)));
}

function parseAnswer(json: unknown): { code: number; text: string } | undefined {
  const value = (json ?? {}) as { code?: unknown; text?: unknown };
  return typeof value.code === 'number' ? { code: value.code, text: typeof value.text === 'string' ? value.text.slice(0, 200) : '' } : undefined;
}
