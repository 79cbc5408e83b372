import type { Writable } from 'node:stream';
import type { Sink } from './sink.ts';

/**
 * One JSON line per batch on standard output, for a collector that reads the agent's output (a
 * container log driver, `| vector`, ...). "Durable" here can only mean handed to the OS: write()
 * resolves when the stream's write callback fires. One line is in flight at a time and the next
 * waits for that callback, so the stream's buffer never holds more than one batch (backpressure
 * without a separate 'drain' wait). When the reader goes away (EPIPE) every write rejects, so the
 * agent abandons its batches instead of acking what nobody read.
 */
export function stdoutSink(stream: Writable = process.stdout): Sink {
  let failure: Error | undefined;
  // Without a listener an EPIPE 'error' event would crash the process; it is remembered instead
  // (and the listener stays after close(), for an EPIPE that arrives while the agent exits).
  stream.on('error', (err: Error) => {
    failure ??= err;
  });
  let queue: Promise<void> = Promise.resolve();
  return {
    description: 'stdout (JSON lines)',
    write(batch) {
      const line = `${JSON.stringify(batch)}\n`;
      const next = queue.then(
        () =>
          new Promise<void>((resolve, reject) => {
            if (failure) return reject(failure);
            if (stream.destroyed || stream.writableEnded) return reject(new Error('stdout is closed'));
            stream.write(line, (err) => {
              if (!err) return resolve();
              failure ??= err;
              reject(err);
            });
          }),
      );
      queue = next.catch(() => undefined);
      return next;
    },
    close: () => queue,
  };
}
