import { startTelemetry } from '@keyway/telemetry';

// Before anything that loads express, ioredis, amqplib or pg: their instrumentation patches them as they load.
await startTelemetry('entitlement');
const { runService } = await import('@keyway/kit');
const { buildEntitlement } = await import('./build.ts');
const { EntitlementEnv } = await import('./config.ts');

await runService('entitlement', EntitlementEnv, buildEntitlement);
