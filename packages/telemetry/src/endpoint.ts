/**
 * What kit uses of a started SDK (the /metrics endpoint, the flush at shutdown), without loading the
 * SDK: kit and the CLI that inlines it import this subpath (`@keyway/telemetry/endpoint`) only, and
 * startTelemetry fills it in. No imports, on purpose.
 */

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

/** For startTelemetry's Prometheus reader. */
export const setMetricsEndpoint = (value: MetricsEndpoint): void => {
  endpoint = value;
};

const flushers: (() => Promise<void>)[] = [];
const FLUSH_BOUND_MS = 2000;

/** For startTelemetry: what flushTelemetry sends. */
export const onFlush = (...flush: (() => Promise<void>)[]): void => {
  flushers.push(...flush);
};

/**
 * At shutdown: sends the spans and metrics still queued, for at most 2 s (a collector that is down
 * does not hold the exit up). Without it the last OTEL_BSP_SCHEDULE_DELAY of spans would be lost.
 */
export async function flushTelemetry(): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, FLUSH_BOUND_MS);
  });
  await Promise.race([Promise.allSettled(flushers.map((flush) => flush())), bound]);
  clearTimeout(timer);
}
