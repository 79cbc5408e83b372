import { existsSync, readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Option, type Command } from 'commander';
import { z } from 'zod';
import { CliError, EXIT, usageError } from './exit-codes.ts';

/** The development launcher's ports and CA (README "Two commands"), so `pnpm keyway` works against `pnpm start` as is. */
const DEV = {
  entitlementUrl: 'https://localhost:8442',
  pasUrl: 'https://localhost:8443',
  pacUrl: 'https://localhost:8444',
  topicUrl: 'https://localhost:8445',
  auditUrl: 'https://localhost:8446',
  releasesUrl: 'https://localhost:8447',
  caFile: '.keyway/pki/ca.crt',
};

const HttpsUrl = z.url({ protocol: /^https$/, error: 'must be an https:// URL' });
const File = z.string().min(1);

export const GlobalOptions = z
  .object({
    json: z.boolean().default(false),
    quiet: z.boolean().default(false),
    entitlementUrl: HttpsUrl,
    pasUrl: HttpsUrl,
    pacUrl: HttpsUrl,
    topicUrl: HttpsUrl,
    auditUrl: HttpsUrl,
    releasesUrl: HttpsUrl,
    caFile: File.optional(),
    cert: File.optional(),
    key: File.optional(),
  })
  .refine((o) => (o.cert === undefined) === (o.key === undefined), { message: '--cert and --key go together', path: ['cert'] });
export type GlobalOptions = z.output<typeof GlobalOptions>;

/** The output flags, on the program and on every command that runs something. */
export function addOutputOptions(command: Command): void {
  command.option('--json', 'machine output: the API’s JSON answer, one document on stdout').option('-q, --quiet', 'no progress lines on stderr');
}

export function addGlobalOptions(program: Command): void {
  addOutputOptions(program);
  program
    .addOption(new Option('--entitlement-url <url>', 'entitlement service (admin API)').env('KEYWAY_ENTITLEMENT_URL').default(DEV.entitlementUrl))
    .addOption(new Option('--pas-url <url>', 'PAS (login, signing keys)').env('KEYWAY_PAS_URL').default(DEV.pasUrl))
    .addOption(new Option('--pac-url <url>', 'PAC (tenant SAS keys)').env('KEYWAY_PAC_URL').default(DEV.pacUrl))
    .addOption(new Option('--topic-url <url>', 'topic service (`feed replay --sas-key`)').env('KEYWAY_TOPIC_URL').default(DEV.topicUrl))
    .addOption(new Option('--audit-url <url>', 'audit service (audit events, chain verification)').env('KEYWAY_AUDIT_URL').default(DEV.auditUrl))
    .addOption(new Option('--releases-url <url>', 'releases service (uploads, publishing, downloads, the download report)').env('KEYWAY_RELEASES_URL').default(DEV.releasesUrl))
    .addOption(new Option('--ca-file <file>', `PEM CA of the services' certificates (default: ${DEV.caFile} when present, else Node's bundled CAs)`).env('KEYWAY_CA_FILE'))
    .addOption(new Option('--cert <file>', 'operator client certificate (PEM), instead of a login').env('KEYWAY_CERT_FILE'))
    .addOption(new Option('--key <file>', 'private key of --cert (PEM)').env('KEYWAY_KEY_FILE'));
}

/** The program's flags, and the output flags given after the command that runs (`leaf`). */
export function parseGlobals(program: Command, leaf: Command | undefined): GlobalOptions {
  const given = program.opts();
  const after = leaf?.opts() ?? {};
  const parsed = GlobalOptions.safeParse({ ...given, json: Boolean(given.json || after.json), quiet: Boolean(given.quiet || after.quiet) });
  if (!parsed.success) {
    const flag = (key: PropertyKey | undefined) => `--${String(key ?? '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw usageError(parsed.error.issues.map((i) => `${flag(i.path[0])}: ${i.message}`).join('; '));
  }
  return parsed.data;
}

export function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, EXIT.usage);
  }
}

/** The CA to trust: the one named, else the dev launcher's, else the public roots (production certificates). */
export function caPemOf(globals: GlobalOptions): string {
  if (globals.caFile) return readPem(globals.caFile, '--ca-file');
  if (existsSync(DEV.caFile)) return readPem(DEV.caFile, 'CA file');
  return rootCertificates.join('\n');
}
