import { generateKeyPairSync, type KeyObject, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ApiError } from '@keyway/clients';
import { ConfigError, type Logger } from '@keyway/kit';
import { openSshPrivateKey, parseCertificate, publicKeyFromKeyObject, publicKeyLine } from '@keyway/ssh';
import type { SshCertificateResponse } from '@keyway/contracts';

export interface HostIdentity {
  /** the private key as ssh2 reads it (OpenSSH format) */
  privateKey: string;
  /** the current host certificate's wire blob: read at every key exchange, so a renewal holds from the next connection */
  certificate(): Buffer;
  close(): void;
}

export interface HostIdentityOptions {
  /** SFTP_HOST_KEY_FILE: an Ed25519 key (OpenSSH or PKCS#8 PEM); unset: one made at start, which the certificate vouches for */
  keyFile?: string | undefined;
  /** SFTP_HOST_CERTIFICATE_FILE: a certificate for that key, issued elsewhere; unset: PAS's CA issues one */
  certificateFile?: string | undefined;
  /** the names clients connect to (the certificate's principals) */
  hostnames: string[];
  /** PAS's POST /internal/v1/ssh/host-certificates (pasClient.hostCertificate) */
  issue: (publicKeyLine: string, hostnames: string[]) => Promise<SshCertificateResponse>;
  logger: Logger;
  /** how long to keep asking PAS at start before giving up (its CA may still be starting) */
  startWaitMs?: number;
}

const RETRY_MS = 5_000;
const DAY_MS = 86_400_000;

async function hostKey(file: string | undefined): Promise<KeyObject> {
  if (!file) return generateKeyPairSync('ed25519').privateKey;
  const text = await readFile(file, 'utf8');
  if (text.includes('BEGIN OPENSSH PRIVATE KEY')) throw new Error('SFTP_HOST_KEY_FILE: give the Ed25519 key as PKCS#8 PEM (ssh-keygen -p -m PKCS8 -f key converts it)');
  return createPrivateKey(text);
}

/**
 * The SFTP server's host key and its certificate from Keyway's SSH CA, so a client with the
 * `@cert-authority` line (keyway ssh known-hosts) trusts it without trust on first use. PAS's
 * certificate is renewed at half its life; a renewal that fails is tried again every 5 s while
 * the old certificate still holds (a client refuses an expired one: that is the failure mode).
 */
export async function hostIdentity(options: HostIdentityOptions): Promise<HostIdentity> {
  const key = await hostKey(options.keyFile);
  const privateKey = openSshPrivateKey(key);
  if (options.certificateFile) {
    const line = (await readFile(options.certificateFile, 'utf8')).trim();
    const blob = Buffer.from(line.split(/\s+/)[1] ?? '', 'base64');
    const certificate = parseCertificate(blob);
    if (!certificate.publicKey.blob.equals(publicKeyFromKeyObject(key).blob)) throw new Error('SFTP_HOST_CERTIFICATE_FILE is not a certificate for SFTP_HOST_KEY_FILE');
    return { privateKey, certificate: () => blob, close: () => undefined };
  }

  const line = publicKeyLine(publicKeyFromKeyObject(key));
  let current: { blob: Buffer; validBefore: number } | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const ours = publicKeyFromKeyObject(key).blob;
  /** a new certificate replaces the one served only once it is read whole: for our key, a host certificate, valid now */
  const obtain = async () => {
    const issued = await options.issue(line, options.hostnames);
    const blob = Buffer.from(issued.certificate.split(' ')[1] ?? '', 'base64');
    const certificate = parseCertificate(blob);
    const now = Date.now();
    if (!certificate.publicKey.blob.equals(ours) || certificate.type !== 'host' || !(certificate.validAfter.getTime() <= now && now < certificate.validBefore.getTime())) {
      throw new Error(`PAS answered a certificate that is not a valid host certificate for this key (serial ${issued.serial})`);
    }
    current = { blob, validBefore: certificate.validBefore.getTime() };
    options.logger.info('sftp.host_certificate', { serial: issued.serial, principals: issued.principals, valid_before: issued.valid_before });
  };
  /** renewed at half the time left, at most a day ahead (a timer cannot wait 25 days) */
  const renewIn = (validBefore: number) => Math.min(DAY_MS, Math.max(RETRY_MS, (validBefore - Date.now()) / 2));
  const schedule = (ms: number) => {
    if (closed) return;
    timer = setTimeout(() => {
      obtain()
        .then(() => current && schedule(renewIn(current.validBefore)))
        .catch((err: unknown) => {
          options.logger.warn('sftp.host_certificate_failed', { err: err instanceof Error ? err.message : String(err) });
          schedule(RETRY_MS);
        });
    }, ms);
    timer.unref();
  };

  const deadline = Date.now() + (options.startWaitMs ?? 60_000);
  for (;;) {
    try {
      await obtain();
      break;
    } catch (err) {
      // PAS refusing (not unreachable) is configuration: exit 78, so a supervisor does not restart into it again
      if (err instanceof ApiError && err.status < 500) {
        throw new ConfigError([`SFTP_HOST_NAMES: PAS refuses to certify the SFTP host key (${err.message}); set PAS's SSH_HOST_CERT_NAMES (or RELEASES_AUDIENCE) to these names, or SFTP_PORT=off`]);
      }
      if (Date.now() > deadline) throw new Error(`no host certificate from PAS: ${err instanceof Error ? err.message : String(err)}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  if (current) schedule(renewIn(current.validBefore));
  return {
    privateKey,
    certificate: () => (current as { blob: Buffer }).blob,
    close: () => {
      closed = true;
      clearTimeout(timer);
    },
  };
}
