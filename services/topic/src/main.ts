import { startTelemetry } from '@keyway/telemetry';

// Before anything that loads express, ioredis, amqplib or pg: their instrumentation patches them as they load.
await startTelemetry('topic');
const { runService } = await import('@keyway/kit');
const { buildTopic } = await import('./build.ts');
const { TopicEnv } = await import('./config.ts');

await runService('topic', TopicEnv, buildTopic);
