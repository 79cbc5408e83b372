import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One span as the OTLP/HTTP JSON encoding carries it (ids in hex), with its resource's service.name. */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer */
  kind: number;
}

export const SERVER = 2;
export const CLIENT = 3;
export const PRODUCER = 4;

interface OtlpTraces {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
    scopeSpans?: { spans?: Omit<ReceivedSpan, 'service'>[] }[];
  }[];
}

/**
 * A collector's OTLP/HTTP receiver (http/json) that keeps every span in memory: the services under
 * test export to it with OTEL_EXPORTER_OTLP_ENDPOINT. Metrics posts are taken and counted. The
 * x-collector-key header of each traces post is kept, as a collector's API key check would see it.
 */
export async function startOtlpReceiver(): Promise<{ url: string; spans: ReceivedSpan[]; collectorKeys: Set<string | undefined>; metricPosts: () => number; close(): Promise<void> }> {
  const spans: ReceivedSpan[] = [];
  const collectorKeys = new Set<string | undefined>();
  let metricPosts = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        collectorKeys.add(req.headers['x-collector-key'] as string | undefined);
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpTraces;
        for (const resourceSpans of body.resourceSpans ?? []) {
          const service = resourceSpans.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '?';
          for (const scope of resourceSpans.scopeSpans ?? []) for (const span of scope.spans ?? []) spans.push({ ...span, service });
        }
      } else if (req.method === 'POST' && req.url === '/v1/metrics') {
        metricPosts += 1;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    collectorKeys,
    metricPosts: () => metricPosts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
