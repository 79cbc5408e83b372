import type { Logger } from './logger.ts';

/** SIGTERM/SIGINT: run the closers in order (stop accepting first, dependencies last), then exit. */
export function onShutdown(logger: Logger, closers: Array<() => Promise<unknown> | unknown>): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    for (const close of closers) {
      try {
        await close();
      } catch (err) {
        logger.warn('error while shutting down', { err });
      }
    }
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
