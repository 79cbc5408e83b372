import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';

export interface HttpsAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One HTTPS request, its whole answer collected. A request that stalls (no bytes either way) for
 * `timeoutMs` fails; the error names the host only (URLs and headers may carry secrets).
 */
export function httpsCall(url: URL, options: { method: string; agent: https.Agent; headers: Record<string, string | number>; body?: Buffer | string; timeoutMs: number }): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method: options.method, agent: options.agent, headers: options.headers, timeout: options.timeoutMs }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
    });
    request.on('timeout', () => request.destroy(new Error(`${url.host} did not answer within ${options.timeoutMs} ms`)));
    request.on('error', reject);
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
