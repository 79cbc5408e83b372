import { register } from 'node:module';
import { DiagLogLevel, diag, metrics, type DiagLogger } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator, setGlobalErrorHandler } from '@opentelemetry/core';
import { OTLPMetricExporter as OTLPJsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OTLPProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { AmqplibInstrumentation } from '@opentelemetry/instrumentation-amqplib';
import { ExpressInstrumentation, ExpressLayerType } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { detectResources, envDetector, hostDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationType, MeterProvider, PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { createAddHookMessageChannel } from 'import-in-the-middle';
import { TelemetryConfigError, telemetryPlan, type TelemetryPlan } from './config.ts';
import { prometheusReader } from './metrics-endpoint.ts';

/** Probes and scrapes are not traced: they would bury the requests that matter. */
const UNTRACED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * The OpenTelemetry SDK for `service`, configured by the standard OTEL_* variables (config.ts):
 * W3C trace context in and out of every HTTP call, spans for http/https, express, ioredis, amqplib
 * and pg, traces over OTLP, metrics on GET /metrics (Prometheus, METRICS_TOKEN) and over OTLP.
 *
 * Must run before express, ioredis, amqplib or pg is loaded: main.ts awaits it, then imports the
 * rest dynamically. Our code is ESM, so an import-in-the-middle loader hook is registered for the
 * instrumented modules (the CommonJS files they require are hooked by require-in-the-middle).
 * A bad setting prints every bad key and exits 78, as the services' own configuration does.
 */
export async function startTelemetry(service: string, env: Record<string, string | undefined> = process.env): Promise<void> {
  let plan: TelemetryPlan | undefined;
  try {
    plan = telemetryPlan(service, env);
  } catch (err) {
    if (!(err instanceof TelemetryConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
  if (plan === undefined) return;

  diag.setLogger(diagnostics(plan.serviceName, DIAG_LEVEL[plan.logLevel]), DIAG_LEVEL[plan.logLevel]);
  // A collector that is down is not the service's failure: exports run off the request path
  // (batched, bounded queue, dropped when full), and their errors are debug diagnostics.
  setGlobalErrorHandler((err) => diag.debug('export failed', err instanceof Error ? err.message : String(err)));

  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  const esmHooked = registerEsmHook(registerOptions);

  const resource = resourceFromAttributes({ 'service.namespace': 'keyway' })
    .merge(detectResources({ detectors: [hostDetector, envDetector] }))
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: plan.serviceName }));

  const tracerProvider = new NodeTracerProvider({
    resource,
    spanProcessors: plan.traces ? [new BatchSpanProcessor(plan.traces.protocol === 'http/json' ? new OTLPJsonTraceExporter() : new OTLPProtoTraceExporter())] : [],
  });
  const propagators = plan.propagators.map((name) => (name === 'tracecontext' ? new W3CTraceContextPropagator() : new W3CBaggagePropagator()));
  tracerProvider.register({ propagator: new CompositePropagator({ propagators }) });

  const readers: MetricReader[] = [];
  if (plan.metricsToken !== undefined) readers.push(prometheusReader(plan.metricsToken));
  if (plan.otlpMetrics) {
    const { protocol, intervalMs, timeoutMs } = plan.otlpMetrics;
    const exporter = protocol === 'http/json' ? new OTLPJsonMetricExporter() : new OTLPProtoMetricExporter();
    readers.push(new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: intervalMs, exportTimeoutMillis: timeoutMs }));
  }
  const meterProvider = new MeterProvider({
    resource,
    readers,
    // kit records http.server.request.duration itself, with the express route (http.route) the
    // http instrumentation cannot see: its own server histograms would count every request twice.
    views: [{ instrumentName: 'http.server.request.duration', meterName: '@opentelemetry/instrumentation-http', aggregation: { type: AggregationType.DROP } }],
  });
  metrics.setGlobalMeterProvider(meterProvider);
  flushers.push(
    () => tracerProvider.forceFlush(),
    () => meterProvider.forceFlush(),
  );

  registerInstrumentations({
    tracerProvider,
    meterProvider,
    instrumentations: [
      new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.has((req.url ?? '').split('?')[0] ?? '') }),
      // route handlers only: a span per middleware and per router passed on the way is a dozen per request
      new ExpressInstrumentation({ ignoreLayersType: [ExpressLayerType.MIDDLEWARE, ExpressLayerType.ROUTER] }),
      new IORedisInstrumentation(),
      new AmqplibInstrumentation(),
      new PgInstrumentation(),
    ],
  });
  // the loader thread knows every module to hook before anything imports one
  if (esmHooked) await waitForAllMessagesAcknowledged();
}

/**
 * The import-in-the-middle loader, resolved from beside this module (node_modules of the service).
 * A build with everything inlined has none: it then runs with what require-in-the-middle patches
 * (CommonJS requires, node:http/https), rather than not at all.
 */
function registerEsmHook(options: ReturnType<typeof createAddHookMessageChannel>['registerOptions']): boolean {
  try {
    register('import-in-the-middle/hook.mjs', import.meta.url, options);
    return true;
  } catch (err) {
    diag.warn('import-in-the-middle is not installed beside this program: ES module imports are not instrumented', err instanceof Error ? err.message : String(err));
    return false;
  }
}

const flushers: (() => Promise<void>)[] = [];
const FLUSH_BOUND_MS = 2000;

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

const DIAG_LEVEL: Record<TelemetryPlan['logLevel'], DiagLogLevel> = {
  none: DiagLogLevel.NONE,
  error: DiagLogLevel.ERROR,
  warn: DiagLogLevel.WARN,
  info: DiagLogLevel.INFO,
  debug: DiagLogLevel.DEBUG,
  verbose: DiagLogLevel.VERBOSE,
  all: DiagLogLevel.ALL,
};

/** What the SDK says about an export that failed or timed out (the readers log those at error themselves). */
const EXPORT_TROUBLE = /export/i;

/**
 * The SDK's own messages as JSON lines on standard error (standard output may carry the importer's
 * batches). Export trouble is demoted to debug: a collector being down is the collector's alert.
 */
function diagnostics(service: string, threshold: DiagLogLevel): DiagLogger {
  const write =
    (level: 'error' | 'warn' | 'info' | 'debug') =>
    (message: string, ...args: unknown[]) => {
      const demoted = (level === 'error' || level === 'warn') && EXPORT_TROUBLE.test(message);
      if (demoted && threshold < DiagLogLevel.DEBUG) return;
      const line = { time: new Date().toISOString(), level: demoted ? 'debug' : level, msg: `opentelemetry: ${message}`, service, args: args.map(String) };
      process.stderr.write(`${JSON.stringify(line)}\n`);
    };
  return { error: write('error'), warn: write('warn'), info: write('info'), debug: write('debug'), verbose: write('debug') };
}
