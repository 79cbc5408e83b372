import { createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Option, type Command } from 'commander';
import { z } from 'zod';
import { assertionAlgFor, pasClient, releasesClient, signClientAssertion, type ReleaseLink, type TokenSource, type UploadResult } from '@keyway/clients';
import { DownloadReportQuery, FileName, ProductId, RELEASES_SCOPE, TenantId, VersionName, type ReleaseFile, type VersionDetail } from '@keyway/contracts';
import type { CliContext } from '../context.ts';
import { passwordLogin } from './login.ts';
import { CliError, EXIT, usageError } from '../exit-codes.ts';
import { parseArg } from '../input.ts';
import { readPem } from '../options.ts';
import { fields, list, table } from '../output.ts';
import { freshAccessToken, readSession, releaseSessionPath } from '../session.ts';

/** A token this close to expiry is not used: the pipeline logs in again (a fresh assertion). */
const MARGIN_MS = 60_000;

export interface MachineLogin {
  clientId?: string;
  clientKey?: string;
  kid?: string;
}

/** --client-id, --client-key, --kid (RFC 7523 private_key_jwt) on the commands that act as a person or a pipeline. */
export function addMachineLogin(command: Command): Command {
  return command
    .addOption(new Option('--client-id <id>', 'pipeline login: the agent user’s id (client_credentials with private_key_jwt)').env('KEYWAY_CLIENT_ID'))
    .addOption(new Option('--client-key <file>', 'pipeline login: its private key (PEM, EC P-256 or Ed25519)').env('KEYWAY_CLIENT_KEY_FILE'))
    .addOption(new Option('--kid <kid>', 'pipeline login: the kid its public key was registered under (`keyway user key add`)').env('KEYWAY_CLIENT_KID'));
}

/**
 * The releases access token for this run: a pipeline's key pair when one is given (a fresh
 * assertion at each login, scope releases), else `keyway release login`'s session (refreshed at PAS).
 */
export function releaseToken(context: CliContext, login: MachineLogin): TokenSource {
  const given = [login.clientId, login.clientKey, login.kid].filter((v) => v !== undefined).length;
  if (given > 0 && given < 3) throw usageError('--client-id, --client-key and --kid go together');
  const { pasUrl } = context.globals();
  const pas = async () => pasClient(await context.clientOptions('pas', false));
  if (given === 3) {
    const privateKey = createPrivateKey(readPem(login.clientKey!, '--client-key'));
    const key = { clientId: login.clientId!, privateKey, kid: login.kid!, alg: assertionAlgFor(privateKey) };
    let current: { token: string; until: number } | undefined;
    return async () => {
      if (current && current.until - Date.now() > MARGIN_MS) return current.token;
      const client = await pas();
      // RFC 7523 §3 item 3: addressed to the issuer PAS names itself
      const { issuer } = await client.discovery();
      const answer = await client.clientCredentials(signClientAssertion(key, issuer), RELEASES_SCOPE);
      current = { token: answer.access_token, until: Date.now() + answer.expires_in * 1000 };
      return current.token;
    };
  }
  const path = releaseSessionPath();
  if (!readSession(path)) throw new CliError('no credentials: give --client-id, --client-key and --kid (a pipeline), or run `keyway release login`', EXIT.auth);
  return async () => freshAccessToken(await context.clientOptions('pas', false), pasUrl, path, Date.now, 'keyway release login');
}

/** Progress of a transfer on stderr, only for a person watching (a TTY), a line per tenth. */
function progressOf(context: CliContext, what: string) {
  if (!process.stderr.isTTY) return undefined;
  let shown = -1;
  return (done: number, total: number) => {
    const tenth = total > 0 ? Math.floor((done / total) * 10) : 10;
    if (tenth === shown) return;
    shown = tenth;
    context.progress(`${what}: ${tenth * 10}% (${done} of ${total} bytes)`);
  };
}

const showVersion = (v: VersionDetail) =>
  [
    fields([
      ['product', v.product],
      ['version', v.version],
      ['state', v.state],
      ['published', v.publishedAt],
      ['withdrawn', v.withdrawnAt],
    ]),
    table(v.files, [
      ['file', (f) => f.name],
      ['state', (f) => f.state],
      ['size', (f) => f.size],
      ['sha256', (f) => f.sha256],
      ['reason', (f) => f.reason],
    ]),
  ].join('\n');

/** A link as the landing page shows it: https://host/products/{product}/{version}/{file}. */
function linkArg(value: string): { base: string; link: ReleaseLink } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`${value}: not a URL`);
  }
  const parts = url.pathname.split('/').map(decodeURIComponent);
  if (url.protocol !== 'https:' || parts.length !== 5 || parts[1] !== 'products') throw usageError(`${value}: expected https://…/products/<product>/<version>/<file>`);
  return { base: url.origin, link: { product: parseArg(ProductId, parts[2], 'product'), version: parseArg(VersionName, parts[3], 'version'), file: parseArg(FileName, parts[4], 'file') } };
}

/** A file the scanner refused: never publishable. */
const refused = (f: ReleaseFile) => f.state === 'infected' || f.state === 'too_large';

export function register(program: Command, context: CliContext): void {
  const release = program.command('release').description('the distribution center: login, upload, publish, withdraw, list, download, report');
  const client = async (base?: string) => releasesClient({ ...(await context.clientOptions('releases', false)), ...(base && { baseUrl: base }), timeoutMs: 30_000 });

  release
    .command('login')
    .description('log in as a person with scope releases (PAS password grant); saved apart from `keyway login`’s operator session')
    .argument('[email]', 'the email (asked for when omitted)')
    .addHelpText(
      'after',
      '\nSaved to $XDG_CONFIG_HOME/keyway/release-session.json (default ~/.config/keyway/), mode 0600.\nPipelines log in with a key pair instead: --client-id, --client-key, --kid on each command.',
    )
    .action(async (emailArgument: string | undefined) => {
      const session = await passwordLogin(context, emailArgument, RELEASES_SCOPE, releaseSessionPath());
      const shown = { email: session.email, pas_url: session.pas_url, scope: session.scope, refresh_expires_at: new Date(session.refresh_expires_at).toISOString() };
      context.print(shown, () => `Logged in to the releases as ${session.email}; session until ${shown.refresh_expires_at} (${releaseSessionPath()}).`);
    });

  addMachineLogin(
    release
      .command('upload')
      .description('upload files to a version (publisher) or, without a version, to your tenant’s upload location of the product (uploader); resumes an interrupted upload')
      .argument('<product>')
      .argument('<version-or-file>', 'the version (optional), then the files')
      .argument('[files...]')
      .option('--chunk-mib <n>', 'MiB per PATCH request', '8')
      .addHelpText('after', '\nAn unfinished upload is remembered in <file>.keyway-upload (mode 0600): run the same command again to go on from the server’s offset.'),
  ).action(async (productArg: string, first: string, rest: string[], options: MachineLogin & { chunkMib: string }) => {
    const product = parseArg(ProductId, productArg, 'product');
    // `<product> <file>` or `<product> <version> <file>...`: a version is not a file lying here
    const versioned = rest.length > 0 && VersionName.safeParse(first).success && !existsSync(first);
    const version = versioned ? first : undefined;
    const files = versioned ? rest : [first, ...rest];
    const chunkMib = parseArg(z.coerce.number().int().min(1).max(1024), options.chunkMib, '--chunk-mib');
    const accessToken = releaseToken(context, options);
    const releases = await client();
    const results: UploadResult[] = [];
    for (const file of files) {
      const result = await releases.upload(file, { product, version, chunkBytes: chunkMib * 1024 * 1024 }, { accessToken, onProgress: progressOf(context, basename(file)) });
      if (result.resumedFrom > 0) context.progress(`${result.filename}: resumed at byte ${result.resumedFrom}`);
      results.push(result);
    }
    context.print({ product, version, files: results }, () =>
      [
        `Uploaded to ${product} ${version ?? '(your upload location)'}; the scanner checks each file before it can be published.`,
        table(results, [
          ['file', (r) => r.filename],
          ['size', (r) => r.size],
          ['sha256', (r) => r.sha256],
          ['resumed at', (r) => r.resumedFrom],
          ['state', (r) => r.fileState],
        ]),
      ].join('\n'),
    );
  });

  addMachineLogin(
    release
      .command('publish')
      .description('publish a version once every file is scanned clean (publisher); an infected file fails it')
      .argument('<product>')
      .argument('<version>')
      .option('--wait <sec>', 'seconds to wait for the scanner', '300')
      .addHelpText('after', '\nExit 4 when a file is infected (its name and the signature are printed) or the version cannot be published; 6 when the scanner did not finish in time.'),
  ).action(async (productArg: string, versionArg: string, options: MachineLogin & { wait: string }) => {
    const product = parseArg(ProductId, productArg, 'product');
    const version = parseArg(VersionName, versionArg, 'version');
    const waitSec = parseArg(z.coerce.number().int().min(0).max(86_400), options.wait, '--wait');
    const accessToken = releaseToken(context, options);
    const releases = await client();
    const deadline = Date.now() + waitSec * 1000;
    let said = '';
    for (;;) {
      const detail = await releases.getVersion(product, version, { accessToken: await accessToken() });
      const bad = detail.files.filter(refused);
      if (bad.length > 0) {
        throw new CliError(`${product} ${version} cannot be published: ${bad.map((f) => `${f.name} is ${f.state}${f.reason ? ` (${f.reason})` : ''}`).join('; ')}`, EXIT.conflict);
      }
      // the service refuses an empty version or a published one with its own 409: let it say so
      if (detail.state !== 'draft' || detail.files.every((f) => f.state === 'clean')) break;
      if (Date.now() >= deadline) {
        const waiting = detail.files.filter((f) => f.state !== 'clean').map((f) => `${f.name} (${f.state})`);
        throw new CliError(`the scanner has not finished after ${waitSec} s: ${list(waiting)}; run publish again later`, EXIT.unavailable);
      }
      const waiting = `waiting for the scanner: ${list(detail.files.filter((f) => f.state !== 'clean').map((f) => `${f.name} (${f.state})`))}`;
      if (waiting !== said) context.progress(waiting);
      said = waiting;
      await sleep(1000);
    }
    const published = await releases.publish(product, version, { accessToken: await accessToken() });
    context.print(published, () => `Published ${product} ${version}.\n${showVersion(published)}`);
  });

  addMachineLogin(release.command('withdraw').description('withdraw a published version (publisher): its links answer 404 from then on').argument('<product>').argument('<version>')).action(
    async (productArg: string, versionArg: string, options: MachineLogin) => {
      const accessToken = releaseToken(context, options);
      const withdrawn = await (await client()).withdraw(parseArg(ProductId, productArg, 'product'), parseArg(VersionName, versionArg, 'version'), { accessToken: await accessToken() });
      context.print(withdrawn, () => `Withdrew ${withdrawn.product} ${withdrawn.version}.`);
    },
  );

  addMachineLogin(release.command('list').description('the products you hold rights on; a product’s versions; a version’s files').argument('[product]').argument('[version]')).action(
    async (productArg: string | undefined, versionArg: string | undefined, options: MachineLogin) => {
      const as = { accessToken: await releaseToken(context, options)() };
      const releases = await client();
      if (productArg === undefined) {
        const { products } = await releases.listProducts(as);
        context.print({ products }, () =>
          table(products, [
            ['product', (p) => p.product],
            ['rights', (p) => list(p.rights)],
            ['versions', (p) => list(p.versions.map((v) => (v.state === 'published' ? v.version : `${v.version} (${v.state})`)))],
          ]),
        );
        return;
      }
      const product = parseArg(ProductId, productArg, 'product');
      if (versionArg === undefined) {
        const detail = await releases.getProduct(product, as);
        context.print(detail, () =>
          [
            fields([
              ['product', detail.product],
              ['rights', list(detail.rights)],
            ]),
            table(detail.versions, [
              ['version', (v) => v.version],
              ['state', (v) => v.state],
              ['published', (v) => v.publishedAt],
            ]),
          ].join('\n'),
        );
        return;
      }
      const detail = await releases.getVersion(product, parseArg(VersionName, versionArg, 'version'), as);
      context.print(detail, () => showVersion(detail));
    },
  );

  addMachineLogin(
    release.command('location').description('the files of a tenant’s upload location of a product (its uploaders; the product’s publishers)').argument('<product>').argument('<tenant>'),
  ).action(async (productArg: string, tenantArg: string, options: MachineLogin) => {
    const accessToken = releaseToken(context, options);
    const location = await (await client()).getLocation(parseArg(ProductId, productArg, 'product'), parseArg(TenantId, tenantArg, 'tenant'), { accessToken: await accessToken() });
    context.print(location, () =>
      table(location.files, [
        ['file', (f) => f.name],
        ['state', (f) => f.state],
        ['size', (f) => f.size],
        ['sha256', (f) => f.sha256],
        ['uploaded', (f) => f.uploadedAt],
      ]),
    );
  });

  addMachineLogin(
    release
      .command('download')
      .description('download a file (its link, or product, version and file); resumes an interrupted download and checks its SHA-256')
      .argument('<product-or-link>', 'a product, or a link https://…/products/<product>/<version>/<file>')
      .argument('[version]')
      .argument('[file]')
      .option('-o, --output <path>', 'where to save it (default: the file’s name here)')
      .addHelpText('after', '\nThe bytes go to <path>.part first; run the command again after an interruption to resume (Range, If-Range).'),
  ).action(async (first: string, versionArg: string | undefined, fileArg: string | undefined, options: MachineLogin & { output?: string }) => {
    const isLink = /^https?:\/\//i.test(first);
    if (isLink !== (versionArg === undefined && fileArg === undefined)) throw usageError('give a link, or a product, a version and a file');
    const { base, link } = isLink
      ? linkArg(first)
      : { base: undefined, link: { product: parseArg(ProductId, first, 'product'), version: parseArg(VersionName, versionArg, 'version'), file: parseArg(FileName, fileArg, 'file') } };
    const accessToken = releaseToken(context, options);
    const dest = options.output ?? link.file;
    const result = await (await client(base)).download(link, dest, { accessToken, onProgress: progressOf(context, link.file) });
    if (result.resumedFrom > 0) context.progress(`${link.file}: resumed at byte ${result.resumedFrom}`);
    context.print(result, () => `Saved ${link.product} ${link.version} ${link.file} to ${result.path} (${result.size} bytes, SHA-256 ${result.sha256} checked).`);
  });

  release
    .command('report')
    .description('a tenant’s downloads: who fetched which file, bytes and range, when (operator: `keyway login` or --cert/--key)')
    .requiredOption('--tenant <tenant>')
    .option('--since <time>', 'ISO 8601 time with offset, e.g. 2026-01-01T00:00:00Z')
    .option('--limit <n>', 'at most this many (1-500)', '500')
    .action(async (options: { tenant: string; since?: string; limit: string }) => {
      const query = parseArg(DownloadReportQuery, options, 'report');
      const report = await releasesClient(await context.clientOptions('releases')).downloadReport(query);
      context.print(report, () =>
        table(report.downloads, [
          ['time', (d) => d.time],
          ['subject', (d) => d.subject],
          ['product', (d) => d.product],
          ['version', (d) => d.version],
          ['file', (d) => d.file],
          ['bytes', (d) => d.bytes],
          ['range', (d) => d.range ?? 'whole'],
        ]),
      );
    });
}
