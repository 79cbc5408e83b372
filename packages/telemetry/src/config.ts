import { ConfigError, envValue, parseConfig } from '@keyway/env';
import { z } from 'zod';

/** A comma-separated OTEL_* list (OTEL_TRACES_EXPORTER=otlp,none), each entry one of `values`. */
const list = <T extends string>(values: readonly [T, ...T[]]) =>
  z
    .string()
    .transform((raw) =>
      raw
        .split(',')
        .map((entry) => entry.trim().toLowerCase())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(values)));

// grpc would need @grpc/grpc-js in every image for what a collector also takes over HTTP (port 4318)
const protocol = z.enum(['http/protobuf', 'http/json'], { message: 'expected http/protobuf or http/json (grpc is not shipped: use the collector’s HTTP port, 4318)' });
const milliseconds = z.coerce.number().int().positive();
const count = z.coerce.number().int().positive();
const compression = z.enum(['gzip', 'none'], { message: 'expected gzip or none' });
/** W3C baggage form the exporters parse: key=value pairs separated by commas (values URL-encoded); the message never echoes the value, which holds an API key */
const headers = z.string().refine((value) => value.split(',').every((pair) => /^\s*[^=\s]+\s*=.*$/.test(pair)), 'expected key=value pairs separated by commas');
/** RFC 6750 b64token (token68): what an Authorization: Bearer header can carry, so no whitespace */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * The OpenTelemetry knobs Keyway honours, with their standard names and meanings
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/). The exporters,
 * the sampler and the batch processor read theirs (endpoints, headers, timeouts, compression, sampler
 * argument, batch sizes) from the environment themselves; each is validated here so a typo stops the
 * start rather than being ignored. Read through @keyway/env: any key may be given as X_FILE.
 */
export const TelemetryEnv = z
  .object({
    OTEL_SDK_DISABLED: z
      .string()
      .optional()
      .transform((value) => value?.trim().toLowerCase() === 'true')
      .describe('true: no SDK at all (no spans, no metrics, no /metrics, no trace ids in logs)'),
    OTEL_SERVICE_NAME: z.string().min(1).optional().describe('service.name of spans and metrics; default the service (idp, pas, pac, …)'),
    OTEL_TRACES_EXPORTER: list(['otlp', 'none']).optional().describe('otlp | none; default otlp when an OTLP endpoint for traces is set, none otherwise'),
    OTEL_METRICS_EXPORTER: list(['otlp', 'prometheus', 'none'])
      .optional()
      .describe('otlp and/or prometheus, or none; default: prometheus when METRICS_TOKEN is set, otlp when an OTLP endpoint for metrics is set'),
    OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional().describe('base URL of the collector’s OTLP/HTTP receiver; /v1/traces and /v1/metrics are appended'),
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.string().url().optional().describe('full URL for traces (used as is)'),
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: z.string().url().optional().describe('full URL for metrics (used as is)'),
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol.default('http/protobuf'),
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol.optional(),
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: protocol.optional(),
    OTEL_EXPORTER_OTLP_HEADERS: headers.optional().describe('key=value,… sent with every export (a collector’s API key: give it as OTEL_EXPORTER_OTLP_HEADERS_FILE)'),
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: headers.optional().describe('the same, for traces only (or …_FILE)'),
    OTEL_EXPORTER_OTLP_METRICS_HEADERS: headers.optional().describe('the same, for metrics only (or …_FILE)'),
    OTEL_EXPORTER_OTLP_TIMEOUT: milliseconds.optional().describe('ms one export may take (default 10000); it runs off the request path'),
    OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: milliseconds.optional().describe('the same, for traces only'),
    OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: milliseconds.optional().describe('the same, for metrics only'),
    OTEL_EXPORTER_OTLP_COMPRESSION: compression.optional().describe('gzip | none (default none)'),
    OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: compression.optional(),
    OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: compression.optional(),
    OTEL_BSP_SCHEDULE_DELAY: milliseconds.optional().describe('ms between two span exports (default 5000)'),
    OTEL_BSP_EXPORT_TIMEOUT: milliseconds.optional().describe('ms one span export may take (default 30000)'),
    OTEL_BSP_MAX_QUEUE_SIZE: count.optional().describe('spans kept waiting for export; more are dropped (default 2048)'),
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: count.optional().describe('spans per export (default 512, at most OTEL_BSP_MAX_QUEUE_SIZE)'),
    OTEL_TRACES_SAMPLER: z
      .enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'])
      .optional()
      .describe('default parentbased_always_on'),
    OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional().describe('the ratio of the *traceidratio samplers'),
    OTEL_PROPAGATORS: list(['tracecontext', 'baggage', 'none']).optional().describe('W3C tracecontext and baggage (default both)'),
    OTEL_METRIC_EXPORT_INTERVAL: milliseconds.default(60_000).describe('ms between two OTLP metric exports'),
    OTEL_METRIC_EXPORT_TIMEOUT: milliseconds.default(30_000).describe('ms one OTLP metric export may take'),
    OTEL_LOG_LEVEL: z
      .string()
      .default('info')
      .transform((value) => value.toLowerCase())
      .pipe(z.enum(['none', 'error', 'warn', 'info', 'debug', 'verbose', 'all']))
      .describe('the SDK’s own diagnostics (standard error); failed exports are logged at debug'),
    METRICS_TOKEN: z
      .string()
      .min(16, 'at least 16 characters')
      .regex(TOKEN68, 'letters, digits and - . _ ~ + / only, then = padding (an RFC 6750 bearer token)')
      .optional()
      .describe('bearer token a scraper must present at GET /metrics (or METRICS_TOKEN_FILE); unset: no /metrics (404)'),
  })
  .refine((env) => (env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE ?? 512) <= (env.OTEL_BSP_MAX_QUEUE_SIZE ?? 2048), {
    path: ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE'],
    message: 'must not exceed OTEL_BSP_MAX_QUEUE_SIZE',
  });
type TelemetryEnv = z.output<typeof TelemetryEnv>;

/** What startTelemetry sets up, decided once from the environment. */
export interface TelemetryPlan {
  serviceName: string;
  traces: { protocol: 'http/protobuf' | 'http/json' } | undefined;
  otlpMetrics: { protocol: 'http/protobuf' | 'http/json'; intervalMs: number; timeoutMs: number } | undefined;
  /** OTEL_* settings given as X_FILE (a collector's API key in OTEL_EXPORTER_OTLP_HEADERS_FILE), to be set in process.env where the exporters read them */
  exporterEnv: Record<string, string>;
  /** the bearer token of GET /metrics; undefined: no Prometheus reader, /metrics answers 404 */
  metricsToken: string | undefined;
  propagators: ('tracecontext' | 'baggage')[];
  logLevel: TelemetryEnv['OTEL_LOG_LEVEL'];
}

/** The plan, or ConfigError naming every bad key (startTelemetry exits 78 with it). */
export function telemetryPlan(service: string, env: Record<string, string | undefined>): TelemetryPlan | undefined {
  const config = parseConfig(TelemetryEnv, env);
  if (config.OTEL_SDK_DISABLED) return undefined;
  const metricsToken = config.METRICS_TOKEN;
  const metricsExporters = config.OTEL_METRICS_EXPORTER ?? [
    ...(metricsToken ? (['prometheus'] as const) : []),
    ...(config.OTEL_EXPORTER_OTLP_ENDPOINT || config.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT ? (['otlp'] as const) : []),
  ];
  if (metricsExporters.includes('prometheus') && metricsToken === undefined) {
    throw new ConfigError(['METRICS_TOKEN: OTEL_METRICS_EXPORTER names prometheus: set METRICS_TOKEN (or METRICS_TOKEN_FILE) for GET /metrics']);
  }
  // Unlike the SDK's default (otlp to localhost:4318), nothing is sent until an endpoint or exporter
  // is named: a service without a collector does not retry exports to nobody.
  const tracesExporters = config.OTEL_TRACES_EXPORTER ?? (config.OTEL_EXPORTER_OTLP_ENDPOINT || config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? ['otlp'] : []);
  const exporterEnv: Record<string, string> = {};
  for (const key of Object.keys(TelemetryEnv.shape)) {
    const value = key.startsWith('OTEL_') && env[`${key}_FILE`] !== undefined ? envValue(env, key) : undefined;
    if (value !== undefined) exporterEnv[key] = value;
  }
  return {
    serviceName: config.OTEL_SERVICE_NAME ?? service,
    exporterEnv,
    traces: tracesExporters.includes('otlp') ? { protocol: config.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? config.OTEL_EXPORTER_OTLP_PROTOCOL } : undefined,
    otlpMetrics: metricsExporters.includes('otlp')
      ? {
          protocol: config.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ?? config.OTEL_EXPORTER_OTLP_PROTOCOL,
          intervalMs: config.OTEL_METRIC_EXPORT_INTERVAL,
          // the reader refuses a timeout longer than its interval
          timeoutMs: Math.min(config.OTEL_METRIC_EXPORT_TIMEOUT, config.OTEL_METRIC_EXPORT_INTERVAL),
        }
      : undefined,
    metricsToken: metricsExporters.includes('prometheus') ? metricsToken : undefined,
    propagators: (config.OTEL_PROPAGATORS ?? ['tracecontext', 'baggage']).filter((p) => p !== 'none'),
    logLevel: config.OTEL_LOG_LEVEL,
  };
}
