import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { dpopKeyFromPem, dpopKeyToPem, generateDpopKey, type DpopKey } from '@keyway/tokens';
import { syncDirectory } from './sync-directory.ts';

/** Why a DPoP key file is not used (the importer's, the CLI's): the message says what to do. */
export class DpopKeyFileError extends Error {
  override name = 'DpopKeyFileError';
}

/**
 * A DPoP key pair (RFC 9449) in a file: created on first use (ES256, PKCS#8 PEM, mode 0600), the same
 * key every later time. The importer keeps it in its state directory, the CLI beside its session. It
 * is a key, not a token: the tokens bound to it are useless to whoever copies them without it. A file
 * others may read is refused rather than used, since whoever reads it can use the stolen tokens; so
 * is one that is not a key.
 */
export async function loadOrCreateDpopKey(path: string): Promise<DpopKey> {
  const existing = await readDpopKeyFile(path);
  if (existing !== undefined) return existing;
  const key = await generateDpopKey('ES256');
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // Written whole under another name, then linked into place: a crash leaves no half-written key,
  // and of two processes starting at once on one directory the first link wins and both use its key.
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(temporary, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    throw new DpopKeyFileError(`cannot create the DPoP key file in ${dirname(path)} (${err.code}): the folder must be writable by this user`);
  });
  try {
    await file.writeFile(dpopKeyToPem(key));
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await link(temporary, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return (await readDpopKeyFile(path))!;
  } finally {
    await unlink(temporary);
  }
  await syncDirectory(dirname(path));
  return key;
}

/** The key in the file, checked as loadOrCreateDpopKey checks it; undefined when there is no file. */
export async function readDpopKeyFile(path: string): Promise<DpopKey | undefined> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new DpopKeyFileError(`cannot read the DPoP key file ${path} (${err.code})`);
  });
  if (info === undefined) return undefined;
  if (!info.isFile()) throw new DpopKeyFileError(`the DPoP key file ${path} is not a regular file`);
  if ((info.mode & 0o077) !== 0) {
    throw new DpopKeyFileError(
      `the DPoP key file ${path} has mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}: other users may read the private key its tokens are bound to; make it readable by its owner only (chmod 600 ${path})`,
    );
  }
  const pem = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new DpopKeyFileError(`cannot read the DPoP key file ${path} (${err.code}): it must be readable by this user`);
  });
  try {
    return await dpopKeyFromPem(pem);
  } catch {
    throw new DpopKeyFileError(`the DPoP key file ${path} does not hold an EC P-256 or Ed25519 private key (PKCS#8 PEM); remove it to have a new key made`);
  }
}
