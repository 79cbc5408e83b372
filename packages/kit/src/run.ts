import { startTelemetry } from '@keyway/telemetry';
import type { ServiceBuild, ServiceSchema } from './main.ts';

/**
 * A service's main.ts, whole: telemetry starts first, and only then are kit and the service's own
 * modules loaded (`load` imports them), because the instrumentations patch express, ioredis, amqplib
 * and pg as they load. This module imports nothing else of kit for that reason (`@keyway/kit/run`).
 */
export async function runWithTelemetry<S extends ServiceSchema>(name: string, load: () => Promise<{ schema: S; build: ServiceBuild<S> }>): Promise<void> {
  await startTelemetry(name);
  const [{ runService }, { schema, build }] = await Promise.all([import('./main.ts'), load()]);
  await runService(name, schema, build);
}
