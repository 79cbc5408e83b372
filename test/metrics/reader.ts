import { AggregationTemporality, DataPointType, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type MetricData } from '@opentelemetry/sdk-metrics';

type Attributes = Record<string, string>;

/**
 * A MeterProvider that exports cumulative figures to memory when asked (the hour-long interval never
 * fires in a test), and readers of one metric's data point with exactly the given attributes.
 */
export function memoryReader() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });

  const all = async (): Promise<MetricData[]> => {
    await reader.forceFlush();
    return (exporter.getMetrics().at(-1)?.scopeMetrics ?? []).flatMap((scope) => scope.metrics);
  };
  const collect = async (name: string): Promise<MetricData[]> => (await all()).filter((m) => m.descriptor.name === name);
  const same = (a: Record<string, unknown>, b: Attributes) => Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);

  return {
    provider,
    /** every metric collected now */
    all,
    /** a counter's value (0 when nothing was counted with these attributes) */
    async sum(name: string, attributes: Attributes): Promise<number> {
      const points = (await collect(name)).flatMap((m) => (m.dataPointType === DataPointType.SUM ? m.dataPoints : []));
      return points.filter((p) => same(p.attributes, attributes)).reduce((sum, p) => sum + p.value, 0);
    },
    /** a gauge's last observation (undefined when none was made with these attributes) */
    async gauge(name: string, attributes: Attributes): Promise<number | undefined> {
      const points = (await collect(name)).flatMap((m) => (m.dataPointType === DataPointType.GAUGE ? m.dataPoints : []));
      return points.find((p) => same(p.attributes, attributes))?.value;
    },
    /** a histogram's count, sum, min and max (undefined when nothing was recorded with these attributes) */
    async histogram(name: string, attributes: Attributes): Promise<{ count: number; sum: number; min: number; max: number } | undefined> {
      const points = (await collect(name)).flatMap((m) => (m.dataPointType === DataPointType.HISTOGRAM ? m.dataPoints : []));
      const value = points.find((p) => same(p.attributes, attributes))?.value;
      return value && { count: value.count, sum: value.sum ?? Number.NaN, min: value.min ?? Number.NaN, max: value.max ?? Number.NaN };
    },
  };
}
