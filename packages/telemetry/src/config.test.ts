import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TelemetryConfigError, telemetryPlan } from './config.ts';

const TOKEN = 'a-metrics-token-0123';

describe('telemetryPlan: the standard OTEL_* variables', () => {
  it('exports nothing until an endpoint or exporter is named; service.name defaults to the service', () => {
    expect(telemetryPlan('pas', {})).toEqual({ serviceName: 'pas', traces: undefined, otlpMetrics: undefined, metricsToken: undefined, propagators: ['tracecontext', 'baggage'], logLevel: 'info' });
  });

  it('an OTLP endpoint turns on traces and metrics over OTLP, per-signal protocol over the general one; METRICS_TOKEN turns on /metrics', () => {
    const plan = telemetryPlan('pac', {
      OTEL_SERVICE_NAME: 'pac-eu',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
      OTEL_METRIC_EXPORT_INTERVAL: '10000',
      METRICS_TOKEN: TOKEN,
    });
    expect(plan).toMatchObject({
      serviceName: 'pac-eu',
      traces: { protocol: 'http/json' },
      // the timeout is capped by the interval: the reader refuses a longer one
      otlpMetrics: { protocol: 'http/protobuf', intervalMs: 10_000, timeoutMs: 10_000 },
      metricsToken: TOKEN,
    });
  });

  it('OTEL_SDK_DISABLED=true: no SDK; OTEL_*_EXPORTER=none: nothing exported', () => {
    expect(telemetryPlan('pas', { OTEL_SDK_DISABLED: 'TRUE', METRICS_TOKEN: TOKEN })).toBeUndefined();
    expect(telemetryPlan('pas', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none', METRICS_TOKEN: TOKEN })).toMatchObject({
      traces: undefined,
      otlpMetrics: undefined,
      metricsToken: undefined,
    });
  });

  it('reads METRICS_TOKEN_FILE (one trailing newline stripped)', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'keyway-telemetry-')), 'token');
    writeFileSync(file, `${TOKEN}\n`);
    expect(telemetryPlan('pas', { METRICS_TOKEN_FILE: file })?.metricsToken).toBe(TOKEN);
  });

  it('refuses, naming each key: grpc, an unknown exporter or sampler, a short token, both token and file, prometheus without a token', () => {
    const refusal = (env: Record<string, string>) => {
      try {
        telemetryPlan('pas', env);
      } catch (err) {
        if (err instanceof TelemetryConfigError) return err.message;
        throw err;
      }
      throw new Error('accepted');
    };
    const message = refusal({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_TRACES_EXPORTER: 'jaeger', OTEL_TRACES_SAMPLER: 'sometimes', METRICS_TOKEN: 'short', METRICS_TOKEN_FILE: '/x' });
    for (const key of ['OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_TRACES_EXPORTER', 'OTEL_TRACES_SAMPLER', 'METRICS_TOKEN:', 'METRICS_TOKEN_FILE']) expect(message).toContain(key);
    expect(refusal({ OTEL_METRICS_EXPORTER: 'prometheus' })).toContain('METRICS_TOKEN');
  });
});
