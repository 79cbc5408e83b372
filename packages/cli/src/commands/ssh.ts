import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Option, type Command } from 'commander';
import { z } from 'zod';
import { pasClient, type DpopSigner } from '@keyway/clients';
import { envValue } from '@keyway/kit';
import { certificateAuthorityLine, openSshPrivateKey, parsePublicKeyLine, publicKeyFromKeyObject, publicKeyLine, SshFormatError, verifyCertificate, type SshPublicKey } from '@keyway/ssh';
import type { CliContext } from '../context.ts';
import { CliError, EXIT, usageError } from '../exit-codes.ts';
import { parseArg } from '../input.ts';
import { fields } from '../output.ts';
import { freshSessionToken, readSession, releaseSessionPath, sessionPath } from '../session.ts';
import { addMachineLogin, releaseToken, type MachineLogin } from './release.ts';

const SSH_PORT = 22;

/** `--host <host[:port]>`: a host name or IPv4 address with an optional port, or `[IPv6]:port`. */
const HostArg = z
  .string()
  .regex(/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/, 'expected <host> or <host>:<port>')
  .transform((value) => {
    const match = /^(?:\[(?<v6>[^\]]+)\]|(?<name>[^:]+))(?::(?<port>\d+))?$/.exec(value)!.groups!;
    return { host: (match.v6 ?? match.name)!, port: match.port === undefined ? SSH_PORT : Number(match.port) };
  })
  .refine(({ port }) => port >= 1 && port <= 65_535, 'the port must be 1 to 65535');
type Target = z.output<typeof HostArg>;

/** The releases service's SFTP_PORT default. */
const RELEASES_SFTP_PORT = 8448;

/** The SFTP server's host: the releases service's, on its SFTP port, unless `--host` names another. */
function targetOf(context: CliContext, host: string | undefined): Target {
  return parseArg(HostArg, host ?? `${new URL(context.globals().releasesUrl).hostname}:${RELEASES_SFTP_PORT}`, '--host');
}

/** How known_hosts names a host: `[host]:port` off port 22 (OpenSSH looks it up so), the bare name on it. */
const hostPattern = ({ host, port }: Target) => (port === SSH_PORT ? host : `[${host}]:${port}`);

/** A word a POSIX shell reads back as is: quoted only when it holds anything but the plain characters of paths and names. */
const shellWord = (word: string) => (/^[A-Za-z0-9_./:@=,+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

/** The default folder: `ssh` beside the CLI's sessions, `$XDG_CONFIG_HOME/keyway/ssh` (default ~/.config/keyway/ssh). */
const defaultDir = () => join(dirname(sessionPath()), 'ssh');

/** Written to a new file and renamed over the old one, so sftp never reads half a certificate. */
function writeAtomically(path: string, text: string, mode: number): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode });
  renameSync(temp, path);
}

/**
 * The public half of the key to certify: `<key>.pub` beside it (as ssh-keygen writes it), else derived
 * from the key when it is PEM. Without `--key`, `<dir>/id_ed25519` is made once (0600, OpenSSH format).
 */
function keyToCertify(keyPath: string, given: boolean, context: CliContext): SshPublicKey {
  const publicPath = `${keyPath}.pub`;
  if (!existsSync(keyPath)) {
    if (given) throw usageError(`--key ${keyPath}: no such file`);
    const { privateKey } = generateKeyPairSync('ed25519');
    const publicKey = publicKeyFromKeyObject(privateKey);
    mkdirSync(dirname(keyPath), { recursive: true, mode: 0o700 });
    writeAtomically(keyPath, openSshPrivateKey(privateKey, 'keyway'), 0o600);
    writeAtomically(publicPath, `${publicKeyLine(publicKey, 'keyway')}\n`, 0o644);
    context.progress(`made the key pair ${keyPath}`);
    return publicKey;
  }
  try {
    if (existsSync(publicPath)) return parsePublicKeyLine(readFileSync(publicPath, 'utf8'));
    return publicKeyFromKeyObject(createPrivateKey(readFileSync(keyPath)));
  } catch (err) {
    const why = err instanceof SshFormatError ? err.message : 'not a PEM Ed25519 or P-256 key';
    throw usageError(`${keyPath}: ${why}; keep its public half beside it (ssh-keygen -y -f ${keyPath} > ${publicPath})`);
  }
}

/**
 * The access token a certificate is paid with, first found: a pipeline's key pair (--client-id …),
 * KEYWAY_TOKEN, `keyway release login`'s session, `keyway login`'s. A session's token is bound to the
 * CLI's DPoP key, whose proof goes with it.
 */
async function credentials(context: CliContext, login: MachineLogin): Promise<{ accessToken: string; dpop?: DpopSigner | undefined }> {
  if (login.clientId !== undefined || login.clientKey !== undefined || login.kid !== undefined) return { accessToken: await releaseToken(context, login)() };
  const token = envValue(process.env, 'KEYWAY_TOKEN');
  if (token) return { accessToken: token };
  const pasOptions = await context.clientOptions('pas', false);
  for (const [path, command] of [
    [releaseSessionPath(), 'keyway release login'],
    [sessionPath(), 'keyway login'],
  ] as const) {
    if (readSession(path)) return freshSessionToken(pasOptions, context.globals().pasUrl, path, Date.now, command);
  }
  throw new CliError('no credentials: run `keyway release login` (or `keyway login`), set KEYWAY_TOKEN, or give --client-id, --client-key and --kid', EXIT.auth);
}

export function register(program: Command, context: CliContext): void {
  const ssh = program.command('ssh').description('SFTP to the releases with short-lived SSH certificates from the Keyway SSH CA at PAS');
  const pas = async () => pasClient(await context.clientOptions('pas', false));
  const hostOption = () => new Option('--host <host[:port]>', 'the SFTP server (default: the releases service’s host, port 8448)').env('KEYWAY_SFTP_HOST');

  addMachineLogin(
    ssh
      .command('login')
      .description('trade your login for an SSH certificate valid for minutes, and write what sftp needs: key, certificate, known_hosts')
      .option('--key <path>', 'the private key to certify (its public half in <path>.pub); default <dir>/id_ed25519, made at the first run')
      .option('--dir <dir>', `where the key, certificate and known_hosts go (default ${defaultDir()})`)
      .addOption(hostOption())
      .addHelpText(
        'after',
        '\nThe certificate names your user id as its principal, which is the SFTP user name; the known_hosts file pins the Keyway SSH CA for the host (@cert-authority), so there is no first-use prompt. Run it again when the certificate has expired.',
      ),
  ).action(async (options: MachineLogin & { key?: string; dir?: string; host?: string }) => {
    const target = targetOf(context, options.host);
    const dir = options.dir ?? defaultDir();
    const keyPath = options.key ?? join(dir, 'id_ed25519');
    const { accessToken, dpop } = await credentials(context, options);
    const publicKey = keyToCertify(keyPath, options.key !== undefined, context);
    const client = await pas();
    const [caLine, issued] = await Promise.all([client.sshCaPublicKey(), client.sshCertificate(accessToken, publicKeyLine(publicKey), dpop)]);
    const ca = parsePublicKeyLine(caLine);
    // what sftp will be shown: a certificate of this key, for a user, by the CA the known_hosts line pins
    const certificate = verifyCertificate(Buffer.from(issued.certificate.split(' ')[1] ?? '', 'base64'), { trusted: [ca], type: 'user' });
    if (!certificate.publicKey.blob.equals(publicKey.blob)) throw new CliError('PAS answered a certificate for another key', EXIT.unexpected);
    const user = issued.principals[0]!;
    const certificatePath = `${keyPath}-cert.pub`;
    const knownHostsPath = join(dir, 'known_hosts');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeAtomically(certificatePath, `${issued.certificate} ${issued.key_id}\n`, 0o644);
    writeAtomically(knownHostsPath, `${certificateAuthorityLine(hostPattern(target), ca)}\n`, 0o644);
    const command = [
      'sftp',
      ...['-i', keyPath, '-o', `CertificateFile=${certificatePath}`, '-o', `UserKnownHostsFile=${knownHostsPath}`, '-P', String(target.port)],
      `${user}@${target.host.includes(':') ? `[${target.host}]` : target.host}`,
    ]
      .map(shellWord)
      .join(' ');
    const answer = {
      user,
      host: target.host,
      port: target.port,
      key: keyPath,
      certificate: certificatePath,
      known_hosts: knownHostsPath,
      serial: issued.serial,
      key_id: issued.key_id,
      valid_before: issued.valid_before,
      command,
    };
    context.print(answer, () =>
      [
        fields([
          ['SFTP user', user],
          ['key', keyPath],
          ['certificate', certificatePath],
          ['valid until', issued.valid_before],
          ['known_hosts', knownHostsPath],
        ]),
        '',
        'Connect with:',
        `  ${command}`,
      ].join('\n'),
    );
  });

  ssh
    .command('known-hosts')
    .description('print the @cert-authority line that pins the Keyway SSH CA for the SFTP host (for ~/.ssh/known_hosts); needs no login')
    .addOption(hostOption())
    .action(async (options: { host?: string }) => {
      const target = targetOf(context, options.host);
      const line = certificateAuthorityLine(hostPattern(target), parsePublicKeyLine(await (await pas()).sshCaPublicKey()));
      context.print({ known_hosts: line }, () => line);
    });
}
