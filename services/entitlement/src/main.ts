import { runWithTelemetry } from '@keyway/kit/run';

// telemetry starts before load() brings in express, ioredis, amqplib or pg, so that they are instrumented
await runWithTelemetry('entitlement', async () => ({ schema: (await import('./config.ts')).EntitlementEnv, build: (await import('./build.ts')).buildEntitlement }));
