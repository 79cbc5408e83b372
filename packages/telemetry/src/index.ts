export { flushTelemetry, startTelemetry } from './start.ts';
export { metricsEndpoint, PROMETHEUS_CONTENT_TYPE } from './metrics-endpoint.ts';
