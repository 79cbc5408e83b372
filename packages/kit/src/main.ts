import type { RequestListener } from 'node:http';
import type { z } from 'zod';
import { listenerLimits, loadConfig, readTls, type TlsMaterial } from './config.ts';
import { listenHttps } from './https.ts';
import { createLogger, type Logger, type LogLevel } from './logger.ts';
import { onShutdown } from './shutdown.ts';

export interface Started {
  app: RequestListener;
  /** closed in order after the listener stops accepting */
  close: Array<() => Promise<unknown> | unknown>;
}

/**
 * The only place a service touches process.env, opens its listener and handles signals: each
 * service's main.ts is one call to this.
 */
export async function runService<S extends z.ZodType<{ PORT: number; HOST: string; LOG_LEVEL: LogLevel; TLS_CERT_FILE: string; TLS_KEY_FILE: string; TLS_CA_FILE: string } & Parameters<typeof listenerLimits>[0]>>(
  name: string,
  schema: S,
  start: (config: z.output<S>, context: { logger: Logger; tls: TlsMaterial }) => Promise<Started>,
): Promise<void> {
  const config = loadConfig(schema);
  const logger = createLogger({ service: name, level: config.LOG_LEVEL });
  try {
    const tls = readTls(config);
    const { app, close } = await start(config, { logger, tls });
    const server = await listenHttps(app, tls, config.PORT, config.HOST, listenerLimits(config));
    logger.info('listening', { url: server.url });
    onShutdown(logger, [() => server.close(), ...close]);
  } catch (err) {
    logger.error('failed to start', { err });
    process.exit(1);
  }
}
