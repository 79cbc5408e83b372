import { startTelemetry } from '@keyway/telemetry';

// Before anything that loads express, ioredis, amqplib or pg: their instrumentation patches them as they load.
await startTelemetry('releases');
const { runService } = await import('@keyway/kit');
const { buildReleases } = await import('./build.ts');
const { ReleasesEnv } = await import('./config.ts');

await runService('releases', ReleasesEnv, buildReleases);
