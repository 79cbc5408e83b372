import { flushTelemetry, startTelemetry } from '@keyway/telemetry';

// Before the clients load node:https and axios: their instrumentation patches them as they load.
await startTelemetry('importer');
const { DpopKeyFileError } = await import('@keyway/clients');
const { ConfigError, onShutdown } = await import('@keyway/kit');
const { importerFeeds } = await import('./config.ts');
const { importerLogger, startImporter } = await import('./run.ts');

let feeds: ReturnType<typeof importerFeeds>;
try {
  feeds = importerFeeds(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(78);
}
const logger = importerLogger(feeds[0]!);

try {
  const importer = await startImporter(feeds, logger);
  // SIGTERM/SIGINT: stop() closes each feed's stream, lets the batch being written finish, checkpoints
  // and completes it, closes the sinks and the checkpoints, sends the spans still queued; then the process exits 0.
  onShutdown(logger, [() => importer.stop(), flushTelemetry]);
} catch (err) {
  // a key file others may read, or that is not a key: the operator's to fix, said plainly (EX_CONFIG)
  if (err instanceof DpopKeyFileError || err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
  logger.error('failed to start', { err });
  process.exit(1);
}
