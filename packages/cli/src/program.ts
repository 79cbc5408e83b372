import { Command } from 'commander';
import { auditClient, entitlementClient, pacClient, pasClient, type ClientOptions } from '@keyway/clients';
import { envValue } from '@keyway/kit';
import { commands } from './commands/index.ts';
import type { CliContext, Service } from './context.ts';
import { describeFailure, EXIT, EXIT_CODES_HELP } from './exit-codes.ts';
import { addGlobalOptions, addOutputOptions, caPemOf, parseGlobals, readPem, type GlobalOptions } from './options.ts';
import { freshAccessToken } from './session.ts';
import { terminalSafeLines } from './output.ts';

const EXAMPLES = `Examples:
  pnpm keyway login operator@vendor.example
  pnpm keyway tenant create acme --name "Acme Corp" --feed edr-events
  pnpm keyway user add acme soc@acme.example --role full-control
  pnpm keyway --json tenant list | jq '.tenants[].id'`;

const AUTH_HELP = `Options above go before the command (--json and -q also after it).
Credentials, first found: --cert/--key (operator client certificate), KEYWAY_TOKEN (an operator
access token), the session of \`keyway login\` (~/.config/keyway/session.json, refreshed when it expires).`;

/** The operator's credentials for the admin APIs, decided once per run. */
type Credentials = Pick<ClientOptions, 'clientCert' | 'accessToken'>;

function createContext(program: Command): CliContext {
  let globals: GlobalOptions | undefined;
  let credentials: Promise<Credentials> | undefined;
  let leaf: Command | undefined;
  program.hook('preAction', (_program, actionCommand) => {
    leaf = actionCommand;
  });
  const options = () => (globals ??= parseGlobals(program, leaf));
  const urlOf = (service: Service) =>
    ({ entitlement: options().entitlementUrl, pas: options().pasUrl, pac: options().pacUrl, topic: options().topicUrl, audit: options().auditUrl, releases: options().releasesUrl })[service];

  async function resolveCredentials(): Promise<Credentials> {
    const { cert, key, pasUrl } = options();
    if (cert && key) return { clientCert: { certPem: readPem(cert, '--cert'), keyPem: readPem(key, '--key') } };
    const token = envValue(process.env, 'KEYWAY_TOKEN');
    if (token) return { accessToken: () => token };
    const access = await freshAccessToken({ baseUrl: pasUrl, caPem: caPemOf(options()) }, pasUrl);
    return { accessToken: () => access };
  }

  const context: CliContext = {
    globals: options,
    async clientOptions(service, authenticated = true) {
      const base: ClientOptions = { baseUrl: urlOf(service), caPem: caPemOf(options()) };
      if (!authenticated) return base;
      credentials ??= resolveCredentials();
      return { ...base, ...(await credentials) };
    },
    entitlement: async () => entitlementClient(await context.clientOptions('entitlement')),
    pas: async () => pasClient(await context.clientOptions('pas')),
    pac: async () => pacClient(await context.clientOptions('pac')),
    audit: async () => auditClient(await context.clientOptions('audit')),
    print(data, readable) {
      process.stdout.write(`${options().json ? JSON.stringify(data, null, 2) : terminalSafeLines(readable())}\n`);
    },
    progress(message) {
      if (!options().quiet) process.stderr.write(`${terminalSafeLines(message)}\n`);
    },
  };
  return context;
}

export function buildProgram(): Command {
  const program = new Command('keyway')
    .description('Operate Keyway: tenants, users, feeds, tiers, keys, the importer agent, and releases (upload, publish, download).')
    .showHelpAfterError('(add --help for usage)')
    // Every command throws instead of exiting, so `run` alone decides the exit code.
    .exitOverride()
    // Global flags go before the command, so a command's own flag of the same name is its own:
    // `keyway --cert c --key k keys rotate --tenant t --key secondary`. (--json and -q work anywhere.)
    .enablePositionalOptions()
    .addHelpText('after', `\n${AUTH_HELP}\n\n${EXIT_CODES_HELP}\n\n${EXAMPLES}`);
  addGlobalOptions(program);
  const context = createContext(program);
  for (const command of commands) command.register(program, context);
  for (const leaf of leaves(program)) addOutputOptions(leaf);
  return program;
}

/** The commands that run something (not groups): where the output flags are accepted after the command. */
function leaves(command: Command): Command[] {
  return command.commands.length === 0 ? [command] : command.commands.flatMap(leaves);
}

/** Parses and runs one command line; answers the exit code (never throws). */
export async function run(program: Command, argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    const { exitCode, message } = describeFailure(err);
    if (message) process.stderr.write(`keyway: ${terminalSafeLines(message)}\n`);
    return exitCode;
  }
}
