import { startTelemetry } from '@keyway/telemetry';

// Before anything that loads express, ioredis, amqplib or pg: their instrumentation patches them as they load.
await startTelemetry('idp');
const { runService } = await import('@keyway/kit');
const { buildIdp } = await import('./build.ts');
const { IdpEnv } = await import('./config.ts');

await runService('idp', IdpEnv, buildIdp);
