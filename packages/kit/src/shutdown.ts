import { constants as osConstants } from 'node:os';
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

/**
 * A signal this soon after the first is the same request delivered twice: one Ctrl-C under `pnpm start`
 * reaches the service from the terminal (its process group) and from pnpm forwarding it, nearly at once.
 */
const REPEAT_WINDOW_MS = 2000;

/**
 * SIGTERM/SIGINT: run the closers in order (stop accepting first, dependencies last), then exit 0.
 * A signal within REPEAT_WINDOW_MS of the first is ignored; a later one exits at once (128 + its
 * number, as a shell reports it): an operator's second Ctrl-C does not wait for the drain.
 */
export function onShutdown(logger: Logger, closers: Closer[]): void {
  let firstAt: number | undefined;
  const stop = async (signal: NodeJS.Signals) => {
    if (firstAt !== undefined) {
      if (Date.now() - firstAt < REPEAT_WINDOW_MS) {
        logger.info('repeated signal ignored', { signal });
        return;
      }
      logger.warn('second signal: exiting at once', { signal });
      process.exit(128 + (osConstants.signals[signal] ?? 0));
    }
    firstAt = Date.now();
    logger.info('shutting down', { signal });
    await closeInOrder(closers, logger);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
