import { startTelemetry } from '@keyway/telemetry';

// Before anything that loads express, ioredis, amqplib or pg: their instrumentation patches them as they load.
await startTelemetry('audit');
const { runService } = await import('@keyway/kit');
const { buildAudit } = await import('./build.ts');
const { AuditEnv } = await import('./config.ts');

await runService('audit', AuditEnv, buildAudit);
