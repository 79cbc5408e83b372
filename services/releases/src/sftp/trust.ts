import { readFile } from 'node:fs/promises';
import { parsePublicKeyLine, type SshPublicKey } from '@keyway/ssh';

/** The CA keys whose user certificates this server accepts. */
export interface UserCaTrust {
  keys(): Promise<SshPublicKey[]>;
  /** asks again now (a certificate from an unknown CA: PAS may have a new one); false when nothing changed or it asked too recently */
  refresh(): Promise<boolean>;
}

/** How often PAS's CA key is read again, and the least time between two reads a stranger's certificate may cause. */
const REREAD_MS = 5 * 60_000;
const MIN_REFRESH_MS = 30_000;

/**
 * Keyway's SSH CA as PAS publishes it (GET /.well-known/ssh-ca.pub), read at the first login and every
 * five minutes, plus the keys of SFTP_TRUSTED_USER_CA_FILE (OpenSSH's TrustedUserCAKeys format: one
 * public key line each, # comments). PAS unreachable at a login with nothing read yet: the login fails
 * (closed); a key read before stays trusted until PAS answers again.
 */
export function userCaTrust(options: { fromPas: () => Promise<string>; file?: string | undefined; now?: () => number }): UserCaTrust {
  const now = options.now ?? Date.now;
  let pasKeys: SshPublicKey[] | undefined;
  let readAt = 0;
  let fileKeys: Promise<SshPublicKey[]> | undefined;

  const fromFile = async (): Promise<SshPublicKey[]> => {
    if (!options.file) return [];
    const lines = (await readFile(options.file, 'utf8')).split('\n').map((line) => line.trim());
    return lines.filter((line) => line !== '' && !line.startsWith('#')).map(parsePublicKeyLine);
  };
  let reading: Promise<boolean> | undefined;
  /** one read at a time, whoever asks; the time is taken at the start so a slow or failing PAS is asked once per period, not per login */
  const read = (): Promise<boolean> => {
    readAt = now();
    reading ??= options
      .fromPas()
      .then((line) => {
        const key = parsePublicKeyLine(line);
        const changed = !pasKeys?.some((known) => known.blob.equals(key.blob));
        pasKeys = [key];
        return changed;
      })
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };

  return {
    async keys() {
      fileKeys ??= fromFile();
      if (reading) await reading.catch(() => undefined);
      if (pasKeys === undefined || now() - readAt > REREAD_MS) {
        await read().catch((err: unknown) => {
          if (pasKeys === undefined) throw err;
        });
      }
      return [...(pasKeys ?? []), ...(await fileKeys)];
    },
    async refresh() {
      if (now() - readAt < MIN_REFRESH_MS) return false;
      return read();
    },
  };
}
