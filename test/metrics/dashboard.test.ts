import { readFileSync } from 'node:fs';
import { DataPointType, type MetricData } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { auditMetrics } from '../../packages/audit/src/metrics.ts';
import { securityMetrics } from '../../packages/audit/src/security-metrics.ts';
import { importerMetrics } from '../../services/importer/src/metrics.ts';
import { queueDepthGauge, topicMetrics } from '../../services/topic/src/metrics.ts';
import { memoryReader } from './reader.ts';

/**
 * The Grafana dashboard queries only metrics the code exports, under the names the Prometheus
 * exporter gives them. The catalog is what a real MeterProvider collects from every instrument of
 * the code (each one moved once), named by the rule of @opentelemetry/exporter-prometheus 0.223
 * (PrometheusSerializer: characters outside [a-zA-Z0-9_:] become `_`, a monotonic sum gets `_total`,
 * a histogram is `_bucket`/`_sum`/`_count`; units are not appended). The request latency histogram
 * is kit's (the telemetry helper's), named here as kit records it.
 */
const KIT_HISTOGRAMS = ['http.server.request.duration'];

const prometheusName = (name: string) => name.replace(/[^a-zA-Z0-9_:]/g, '_').replace(/_+/g, '_');
function prometheusNames(metric: MetricData): string[] {
  const name = prometheusName(metric.descriptor.name);
  switch (metric.dataPointType) {
    case DataPointType.SUM:
      return [metric.isMonotonic && !name.endsWith('_total') ? `${name}_total` : name];
    case DataPointType.HISTOGRAM:
      return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
    default:
      return [name];
  }
}

/** every instrument of the code, each moved once, as a MeterProvider collects them */
async function exported(): Promise<MetricData[]> {
  const reader = memoryReader();
  const meter = reader.provider.getMeter('catalog');
  const feed = { tenant: 't', topic: 'f' };

  const topic = topicMetrics(meter);
  topic.published('t', 'f', 1);
  topic.received('t', 'f', false, 1);
  topic.completed('t', 'f', false);
  topic.abandoned('t', 'f', false);
  topic.lockExpired('t', 'f', false);
  topic.deadLettered('t', 'f', 'unreadable');
  const depth = queueDepthGauge({ depth: async () => 1 }, () => [{ topic: feed, subscription: 'default' }], { pollMs: 0, meter });

  const importer = importerMetrics('default', meter);
  importer.written(feed, 1, 0.01, new Date().toISOString());
  importer.writeFailed(feed);
  importer.duplicateDropped(feed);
  importer.lockRenewed(feed);
  importer.lockLost(feed);
  importer.credentialRenewed('login', 'success');
  const pending = importer.observePending(() => ({ feed, batches: 0 }));

  const security = securityMetrics(meter);
  for (const counter of Object.values(security)) counter.add(1, { tenant: 't' });
  const audit = auditMetrics(meter);
  for (const counter of Object.values(audit)) counter.add(1, { service: 's' });
  for (const name of KIT_HISTOGRAMS) meter.createHistogram(name, { unit: 's' }).record(0.01);

  const all = await reader.all();
  depth.close();
  pending.close();
  await reader.provider.shutdown();
  return all;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string; refId: string }>;
  panels?: Panel[];
}
const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/keyway.json', import.meta.url), 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown; definition?: string }> };
};
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
const queries = [...panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr)), ...dashboard.templating.list.flatMap((v) => (v.definition === undefined ? [] : [v.definition]))];
/** the metric names a query reads: ours all start keyway_ or http_server_ (labels such as http_route do not) */
const metricsIn = (query: string) => [...query.matchAll(/\b(keyway_[a-z0-9_]+|http_server_[a-z0-9_]+)\b/g)].map((match) => match[1] as string);

describe('deploy/grafana/keyway.json', () => {
  it('queries only metrics the code exports, by their Prometheus names', async () => {
    const catalog = new Set((await exported()).flatMap(prometheusNames));
    const queried = new Set(queries.flatMap(metricsIn));
    expect(queried.size).toBeGreaterThan(20);
    expect([...queried].filter((name) => !catalog.has(name))).toEqual([]);
    // and the delivery and token figures the issue asks for are all on it
    for (const name of [
      'keyway_topic_batches_published_total',
      'keyway_topic_batches_received_total',
      'keyway_topic_batches_completed_total',
      'keyway_topic_locks_expired_total',
      'keyway_topic_batches_dead_lettered_total',
      'keyway_topic_queue_depth',
      'keyway_importer_lag_bucket',
      'keyway_importer_batches_written_total',
      'keyway_tokens_issued_total',
      'keyway_tokens_refreshed_total',
      'keyway_tokens_revoked_total',
      'keyway_denials_total',
      'keyway_sas_keys_minted_total',
      'http_server_request_duration_bucket',
    ]) {
      expect(queried).toContain(name);
    }
  });

  it('is a Grafana JSON model on a Prometheus datasource variable: unique panel ids, every query on $datasource', () => {
    expect(dashboard.uid).toBe('keyway-overview');
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const ids = panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of panels.filter((p) => p.type !== 'row')) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
    }
  });

  it('docs/deploy/metrics.md describes every metric the code exports', async () => {
    const docs = readFileSync(new URL('../../docs/deploy/metrics.md', import.meta.url), 'utf8');
    const names = (await exported()).map((metric) => metric.descriptor.name);
    expect(names.length).toBeGreaterThan(25);
    expect(names.filter((name) => !docs.includes(`\`${name}\``))).toEqual([]);
  });
});
