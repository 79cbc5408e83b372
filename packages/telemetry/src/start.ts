import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';
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
import { ConfigError } from '@keyway/env';
import { telemetryPlan, type TelemetryPlan } from './config.ts';
import { onFlush } from './endpoint.ts';
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
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
  if (plan === undefined) return;

  diag.setLogger(diagnostics(plan.serviceName, DIAG_LEVEL[plan.logLevel]), DIAG_LEVEL[plan.logLevel]);
  // A collector that is down is not the service's failure: exports run off the request path
  // (batched, bounded queue, dropped when full), and their errors are debug diagnostics.
  setGlobalErrorHandler((err) => diag.debug('export failed', err instanceof Error ? err.message : String(err)));

  // OTEL_* given as X_FILE (a collector's API key in OTEL_EXPORTER_OTLP_HEADERS_FILE): the exporters read process.env only
  Object.assign(process.env, plan.exporterEnv);

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
  onFlush(
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

const HOOK = 'import-in-the-middle/hook.mjs';

/**
 * The import-in-the-middle loader, resolved from beside this module (node_modules of the service).
 * A build with everything inlined has none: it then runs with what require-in-the-middle patches
 * (CommonJS requires, node:http/https), rather than not at all.
 */
function registerEsmHook(options: ReturnType<typeof createAddHookMessageChannel>['registerOptions']): boolean {
  const require = createRequire(import.meta.url);
  let hook: string;
  try {
    hook = require.resolve(HOOK);
  } catch {
    diag.debug('import-in-the-middle is not installed beside this program (an inlined build): ES module imports are not instrumented');
    return false;
  }
  warnOnSecondCopy(require);
  register(pathToFileURL(hook), import.meta.url, options);
  return true;
}

/**
 * The loader hook and @opentelemetry/instrumentation must share one import-in-the-middle (pinned for
 * both by pnpm-workspace.yaml's catalog and overrides): with two copies, modules hooked by one are
 * never seen by the other.
 */
function warnOnSecondCopy(require: NodeJS.Require): void {
  try {
    const ours = require.resolve('import-in-the-middle');
    const theirs = createRequire(require.resolve('@opentelemetry/instrumentation')).resolve('import-in-the-middle');
    if (ours !== theirs) diag.warn('two copies of import-in-the-middle: ES module imports may not be instrumented', ours, theirs);
  } catch {
    // one of them is not resolvable from here: nothing to compare
  }
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

/**
 * What the SDK says when an export could not reach the collector or timed out (the OTLP transport and
 * the metric reader log those at warn/error themselves). Other messages that mention exporters, such
 * as a configuration it ignores, keep their level.
 */
const TRANSPORT_FAILURE = /^(export (request|response) (failure|retryable)|PeriodicExportingMetricReader: metrics export (threw error|timed out))/;

/**
 * The SDK's own messages as JSON lines on standard error (standard output may carry the importer's
 * batches). Transport failures are demoted to debug: a collector being down is the collector's alert.
 */
function diagnostics(service: string, threshold: DiagLogLevel): DiagLogger {
  const write =
    (level: 'error' | 'warn' | 'info' | 'debug') =>
    (message: string, ...args: unknown[]) => {
      const demoted = (level === 'error' || level === 'warn') && TRANSPORT_FAILURE.test(message);
      if (demoted && threshold < DiagLogLevel.DEBUG) return;
      const line = { time: new Date().toISOString(), level: demoted ? 'debug' : level, msg: `opentelemetry: ${message}`, service, args: args.map(String) };
      process.stderr.write(`${JSON.stringify(line)}\n`);
    };
  return { error: write('error'), warn: write('warn'), info: write('info'), debug: write('debug'), verbose: write('debug') };
}
