import { createHash, timingSafeEqual } from 'node:crypto';
import { diag } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { setMetricsEndpoint } from './endpoint.ts';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * A pull reader whose text kit's app serves: the exporter's own HTTP server is never started (one
 * HTTPS listener per service, the token in front of it).
 */
export function prometheusReader(token: string): PrometheusExporter {
  const reader = new PrometheusExporter({ preventServerStart: true });
  const serializer = new PrometheusSerializer();
  const expected = digest(token);
  setMetricsEndpoint({
    accepts: (presented) => timingSafeEqual(digest(presented), expected),
    scrape: async () => {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length > 0) diag.warn('metrics collection errors', ...errors);
      return serializer.serialize(resourceMetrics);
    },
  });
  return reader;
}
