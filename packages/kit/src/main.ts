import type { RequestListener } from 'node:http';
import { flushTelemetry } from '@keyway/telemetry/endpoint';
import type { z } from 'zod';
import { ConfigError, listenerLimits, loadConfig, openTls, type TlsConfig } from './config.ts';
import { listenHttps, type RunningServer } from './https.ts';
import type { ServiceInfra } from './infra.ts';
import { createLogger, type Logger, type LogLevel } from './logger.ts';
import { onShutdown, type Closer } from './shutdown.ts';

type DrainConfig = { SHUTDOWN_DELAY_SEC: number; SHUTDOWN_DRAIN_SEC: number };

/** Out of rotation at once, then drained within the configured bounds (RunningServer.drain). */
async function drain(server: RunningServer, config: DrainConfig, logger: Logger): Promise<void> {
  const started = Date.now();
  await server.drain({ delayMs: config.SHUTDOWN_DELAY_SEC * 1000, graceMs: config.SHUTDOWN_DRAIN_SEC * 1000 });
  logger.info('drained', { ms: Date.now() - started });
}

/** What a service's build returns: its app, and what to close after the listener stops accepting, in order. */
interface Started {
  app: RequestListener;
  close: Closer[];
}

/** The configuration schema of a service runService can start. */
export type ServiceSchema = z.ZodType<{ PORT: number; HOST: string; LOG_LEVEL: LogLevel } & TlsConfig & DrainConfig & Parameters<typeof listenerLimits>[0]>;
/** A service's build.ts. */
export type ServiceBuild<S extends ServiceSchema> = (config: z.output<S>, infra: ServiceInfra) => Promise<Started>;

/**
 * The only place a service touches process.env, opens its listener and handles signals: each
 * service's main.ts is one call to this with its build (build.ts), which tests and the dev
 * launcher call too.
 */
export async function runService<S extends ServiceSchema>(name: string, schema: S, build: ServiceBuild<S>): Promise<void> {
  const config = loadConfig(schema);
  const logger = createLogger({ service: name, level: config.LOG_LEVEL });
  try {
    const tls = openTls(config, logger);
    const { app, close } = await build(config, { logger, tls });
    const server = await listenHttps(app, tls, config.PORT, config.HOST, listenerLimits(config));
    logger.info('listening', { url: server.url });
    // telemetry last: the spans of the requests drained go out too
    onShutdown(logger, [() => drain(server, config, logger), ...close, () => tls.close(), flushTelemetry]);
  } catch (err) {
    logger.error('failed to start', { err });
    // a configuration found wrong only once connected (a database schema behind) is still EX_CONFIG
    process.exit(err instanceof ConfigError ? 78 : 1);
  }
}
