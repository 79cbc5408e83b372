import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSshPrivateKey, publicKeyFromKeyObject, publicKeyLine } from '@keyway/ssh';

/** An Ed25519 key pair in `<dir>/<name>/` as OpenSSH keeps it (id_ed25519 0600, id_ed25519.pub). */
export function sshKeyFiles(dir: string, name: string) {
  const privateKey = generateKeyPairSync('ed25519').privateKey;
  const home = join(dir, name);
  mkdirSync(home, { recursive: true });
  const key = join(home, 'id_ed25519');
  writeFileSync(key, openSshPrivateKey(privateKey), { mode: 0o600 });
  const line = publicKeyLine(publicKeyFromKeyObject(privateKey));
  writeFileSync(`${key}.pub`, `${line}\n`);
  return { home, key, line, privateKey };
}

/** Who runs Debian's `sftp`, with what, against which server. */
export interface SftpClient {
  port: number;
  user: string;
  /** the private key file; its certificate is `<key>-cert.pub` */
  key: string;
  /** false: the key alone (a key registered at the IdP), no certificate offered */
  certificate: boolean;
  /** known_hosts with the `@cert-authority localhost …` line */
  knownHosts: string;
  /** the batch file of sftp commands */
  batch: string;
  /** forced on the client (the bench compares servers at one cipher) */
  cipher?: string;
  /** -l: the client's bandwidth limit in Kbit/s (a transfer slow enough to change something during it) */
  limitKbit?: number;
  /** -q: no progress meter, and no diagnostics from ssh (a refusal's "Permission denied" too) */
  quiet?: boolean;
}

/**
 * The arguments of Debian's `sftp` in batch mode as a person with only this key (and its certificate)
 * who pinned the host by its CA: no agent, no other identity, no password, no prompt, so any refusal
 * fails the run instead of waiting for an answer.
 */
export function sftpBatchArgs(client: SftpClient): string[] {
  const options = [
    client.certificate ? `CertificateFile=${client.key}-cert.pub` : 'CertificateFile=none',
    ...(client.cipher ? [`Ciphers=${client.cipher}`] : []),
    'IdentitiesOnly=yes',
    `UserKnownHostsFile=${client.knownHosts}`,
    'GlobalKnownHostsFile=/dev/null',
    'StrictHostKeyChecking=yes',
    'PasswordAuthentication=no',
    'KbdInteractiveAuthentication=no',
    'IdentityAgent=none',
  ];
  return [
    '-4',
    ...(client.quiet ? ['-q'] : []),
    ...(client.limitKbit ? ['-l', String(client.limitKbit)] : []),
    '-b',
    client.batch,
    '-P',
    String(client.port),
    '-i',
    client.key,
    ...options.flatMap((option) => ['-o', option]),
    `${client.user}@localhost`,
  ];
}
