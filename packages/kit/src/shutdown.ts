import type { Logger } from './logger.ts';

export type Closer = () => Promise<unknown> | unknown;

/** Runs closers one after another, whatever each does; a failure is only logged. */
export async function closeInOrder(closers: Closer[], logger: Logger): Promise<void> {
  for (const close of closers) {
    try {
      await close();
    } catch (err) {
      logger.warn('error while shutting down', { err });
    }
  }
}

/** SIGTERM/SIGINT: run the closers in order (stop accepting first, dependencies last), then exit. */
export function onShutdown(logger: Logger, closers: Closer[]): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    await closeInOrder(closers, logger);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
