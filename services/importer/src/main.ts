import { loadConfig, onShutdown } from '@keyway/kit';
import { ImporterEnv } from './config.ts';
import { importerLogger, startImporter } from './run.ts';

const config = loadConfig(ImporterEnv);
const logger = importerLogger(config);

try {
  const agent = await startImporter(config, logger);
  // SIGTERM/SIGINT: stop() aborts the long poll, lets the batch being written finish, checkpoints
  // and acks it, closes the sink and the checkpoint; then the process exits 0.
  onShutdown(logger, [() => agent.stop()]);
} catch (err) {
  logger.error('failed to start', { err });
  process.exit(1);
}
