export { startTelemetry } from './start.ts';
export { flushTelemetry } from './endpoint.ts';
export { TelemetryEnv } from './config.ts';
