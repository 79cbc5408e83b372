import { request } from 'node:https';
import type * as client from 'openid-client';

/**
 * openid-client speaks fetch, and Node's global fetch cannot be given a CA; this one is node:https
 * trusting the Keyway development CA (`caPem`), answering a standard Response.
 */
export const fetchTrusting =
  (caPem: string): client.CustomFetch =>
  (url, options) =>
    new Promise<Response>((resolve, reject) => {
      const body = options.body instanceof URLSearchParams ? options.body.toString() : options.body;
      if (body !== undefined && body !== null && typeof body !== 'string') throw new TypeError('only string and form bodies are sent to PAS');
      const req = request(url, { method: options.method, headers: options.headers, ca: caPem, signal: options.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
          }
          const status = res.statusCode ?? 502;
          resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers }));
        });
      });
      req.on('error', reject);
      req.end(body ?? undefined);
    });
