import { createHash, timingSafeEqual } from 'node:crypto';
import { diag } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';

/** What kit's GET /metrics needs: the token check and the Prometheus text. */
export interface MetricsEndpoint {
  /** constant-time, whatever the lengths (both sides hashed first) */
  accepts(presentedToken: string): boolean;
  /** the text exposition format (Prometheus 0.0.4) of every instrument, collected now */
  scrape(): Promise<string>;
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

let endpoint: MetricsEndpoint | undefined;

/** The endpoint once startTelemetry made a Prometheus reader (METRICS_TOKEN set); undefined: /metrics answers 404. */
export const metricsEndpoint = (): MetricsEndpoint | undefined => endpoint;

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * A pull reader whose text kit's app serves: the exporter's own HTTP server is never started (one
 * HTTPS listener per service, the token in front of it).
 */
export function prometheusReader(token: string): PrometheusExporter {
  const reader = new PrometheusExporter({ preventServerStart: true });
  const serializer = new PrometheusSerializer();
  const expected = digest(token);
  endpoint = {
    accepts: (presented) => timingSafeEqual(digest(presented), expected),
    scrape: async () => {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length > 0) diag.warn('metrics collection errors', ...errors);
      return serializer.serialize(resourceMetrics);
    },
  };
  return reader;
}
