import { startTelemetry } from '@keyway/telemetry';

// Before anything that loads express, ioredis, amqplib or pg: their instrumentation patches them as they load.
await startTelemetry('pac');
const { runService } = await import('@keyway/kit');
const { buildPac } = await import('./build.ts');
const { PacEnv } = await import('./config.ts');

await runService('pac', PacEnv, buildPac);
