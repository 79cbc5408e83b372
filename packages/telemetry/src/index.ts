export { flushTelemetry, startTelemetry } from './start.ts';
export { metricsEndpoint, PROMETHEUS_CONTENT_TYPE } from './metrics-endpoint.ts';
export { TelemetryEnv } from './config.ts';
