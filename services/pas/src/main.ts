import { startTelemetry } from '@keyway/telemetry';

// Before anything that loads express, ioredis, amqplib or pg: their instrumentation patches them as they load.
await startTelemetry('pas');
const { runService } = await import('@keyway/kit');
const { buildPas } = await import('./build.ts');
const { PasEnv } = await import('./config.ts');

await runService('pas', PasEnv, buildPas);
