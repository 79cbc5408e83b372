import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@keyway/env';
import { telemetryPlan } from './config.ts';

const TOKEN = 'a-metrics-token-0123';

describe('telemetryPlan: the standard OTEL_* variables', () => {
  it('exports nothing until an endpoint or exporter is named; service.name defaults to the service', () => {
    expect(telemetryPlan('pas', {})).toEqual({
      serviceName: 'pas',
      exporterEnv: {},
      traces: undefined,
      otlpMetrics: undefined,
      metricsToken: undefined,
      propagators: ['tracecontext', 'baggage'],
      logLevel: 'info',
    });
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

  it('reads METRICS_TOKEN_FILE and the OTLP headers as _FILE (one trailing newline stripped); only the headers go to the exporters environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-telemetry-'));
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    writeFileSync(join(dir, 'headers'), 'x-api-key=collector-secret\n');
    const plan = telemetryPlan('pas', { METRICS_TOKEN_FILE: join(dir, 'token'), OTEL_EXPORTER_OTLP_TRACES_HEADERS_FILE: join(dir, 'headers'), OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'a=b' });
    expect(plan?.metricsToken).toBe(TOKEN);
    expect(plan?.exporterEnv).toEqual({ OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-api-key=collector-secret' });
  });

  const refusal = (env: Record<string, string>) => {
    try {
      telemetryPlan('pas', env);
    } catch (err) {
      if (err instanceof ConfigError) return err.message;
      throw err;
    }
    throw new Error('accepted');
  };

  it('refuses, naming each key: grpc, an unknown exporter or sampler, a short token, prometheus without a token, bad timeouts, compression, batch sizes, headers', () => {
    const message = refusal({
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_TRACES_EXPORTER: 'jaeger',
      OTEL_TRACES_SAMPLER: 'sometimes',
      METRICS_TOKEN: 'short',
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '10s',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd',
      OTEL_BSP_MAX_QUEUE_SIZE: '-1',
      OTEL_EXPORTER_OTLP_HEADERS: 'Bearer abcdef-secret',
    });
    for (const key of [
      'OTEL_EXPORTER_OTLP_PROTOCOL',
      'OTEL_TRACES_EXPORTER',
      'OTEL_TRACES_SAMPLER',
      'METRICS_TOKEN:',
      'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT',
      'OTEL_EXPORTER_OTLP_COMPRESSION',
      'OTEL_BSP_MAX_QUEUE_SIZE',
      'OTEL_EXPORTER_OTLP_HEADERS',
    ]) {
      expect(message).toContain(key);
    }
    expect(message).not.toContain('abcdef-secret');
    expect(refusal({ OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '200' })).toContain('OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must not exceed OTEL_BSP_MAX_QUEUE_SIZE');
    expect(refusal({ OTEL_METRICS_EXPORTER: 'prometheus' })).toContain('METRICS_TOKEN');
  });

  it('METRICS_TOKEN must be an RFC 6750 bearer token: whitespace or other characters could never match the request check', () => {
    expect(refusal({ METRICS_TOKEN: 'a-metrics token-0123' })).toContain('METRICS_TOKEN: letters, digits');
    expect(refusal({ METRICS_TOKEN: 'a-metrics-token-0123,' })).toContain('METRICS_TOKEN: letters, digits');
    expect(telemetryPlan('pas', { METRICS_TOKEN: 'aZ09-._~+/aZ09-._~+/==' })?.metricsToken).toBe('aZ09-._~+/aZ09-._~+/==');
  });

  it('a key and its _FILE both set, or a file that cannot be read: the key or the path named, never the value', () => {
    const both = refusal({ OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=collector-secret', OTEL_EXPORTER_OTLP_HEADERS_FILE: '/nowhere' });
    expect(both).toContain('OTEL_EXPORTER_OTLP_HEADERS: set both OTEL_EXPORTER_OTLP_HEADERS and OTEL_EXPORTER_OTLP_HEADERS_FILE');
    expect(both).not.toContain('collector-secret');
    expect(refusal({ METRICS_TOKEN_FILE: '/nowhere/token' })).toContain('METRICS_TOKEN_FILE: cannot read /nowhere/token (ENOENT)');
  });
});
