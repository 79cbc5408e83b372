import { Option, type Command } from 'commander';
import { importerFeeds, ImporterFields, importerLogger, startImporter, type ImporterEnv } from '@keyway/importer';
import { ConfigError, onShutdown } from '@keyway/kit';
import type { CliContext } from '../context.ts';
import { usageError } from '../exit-codes.ts';

/** Named by the global connection flags instead, so `--pas-url` means one thing. */
const FROM_GLOBALS = { PAS_URL: 'pasUrl', PAC_URL: 'pacUrl', TLS_CA_FILE: 'caFile' } as const;
/** Secrets stay out of the command line, where `ps` and shell history show them: environment only. */
const ENV_ONLY = new Set(['KEYWAY_PASSWORD', 'HEC_TOKEN', 'SENTINEL_CLIENT_SECRET', 'ES_API_KEY', 'ES_PASSWORD']);

const flagOf = (key: string) => `--${key.toLowerCase().replace(/_/g, '-')}`;

export function register(program: Command, context: CliContext): void {
  const importer = program.command('importer').description('the importer agent');
  const run = importer
    .command('run')
    .description('run the importer agent in the foreground (as services/importer/src/main.ts); Ctrl-C or SIGTERM drains and stops it')
    .addHelpText(
      'after',
      `\nConfigured like the importer service: each of its environment variables, or the flag of the same name
(SINK_FILE → --sink-file); a flag wins. PAS_URL, PAC_URL and TLS_CA_FILE come from --pas-url, --pac-url
and --ca-file (or KEYWAY_PAS_URL, …) when given. KEYWAY_PASSWORD, HEC_TOKEN, SENTINEL_CLIENT_SECRET,
ES_API_KEY and ES_PASSWORD are read from the environment only. See README "Importer".`,
    );
  /** commander's attribute name of each flag → the importer's environment variable */
  const envKeyOf = new Map<string, string>();
  for (const [key, schema] of Object.entries(ImporterFields.shape)) {
    if (key in FROM_GLOBALS || ENV_ONLY.has(key)) continue;
    const option = new Option(`${flagOf(key)} <value>`, schema.description ?? key);
    envKeyOf.set(option.attributeName(), key);
    run.addOption(option);
  }

  run.action(async (options: Record<string, string | undefined>) => {
    const globals = context.globals();
    const env: Record<string, string | undefined> = { ...process.env };
    for (const [key, name] of Object.entries(FROM_GLOBALS)) {
      const source = program.getOptionValueSource(name);
      if (source === 'cli' || source === 'env' || env[key] === undefined) env[key] = globals[name];
    }
    for (const [name, value] of Object.entries(options)) {
      const key = envKeyOf.get(name);
      if (key !== undefined && value !== undefined) env[key] = value;
    }
    let feeds: ImporterEnv[];
    try {
      feeds = importerFeeds(env);
    } catch (err) {
      if (err instanceof ConfigError) throw usageError(err.message);
      throw err;
    }
    const logger = importerLogger(feeds[0]!);
    const importer = await startImporter(feeds, logger);
    context.progress(`importer running (${feeds.map((feed) => `${feed.SINK} sink`).join(', ')}); Ctrl-C to stop`);
    // SIGTERM/SIGINT: the batch being written finishes, is checkpointed and completed, then the process exits 0.
    onShutdown(logger, [() => importer.stop()]);
  });
}
