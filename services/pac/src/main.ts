import { runWithTelemetry } from '@keyway/kit/run';

// telemetry starts before load() brings in express, ioredis, amqplib or pg, so that they are instrumented
await runWithTelemetry('pac', async () => ({ schema: (await import('./config.ts')).PacEnv, build: (await import('./build.ts')).buildPac }));
