import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { dpopKeyFromPem, dpopKeyToPem, generateDpopKey, type DpopKey } from '@keyway/tokens';
import { syncDirectory } from '../durable-append.ts';

/** Why the agent will not start with its DPoP key file: the message says what to do. */
export class DpopKeyFileError extends Error {
  override name = 'DpopKeyFileError';
}

/**
 * The agent's DPoP key pair (RFC 9449), kept in its state directory: created on first start (ES256,
 * PKCS#8 PEM, mode 0600), the same key after every restart. It is a key, not a token (design.md: no
 * tokens on disk): the agent still logs in after a restart, and its new tokens are bound to this key.
 * A file others may read is refused rather than used, since whoever reads it can use the agent's
 * stolen tokens; so is one that is not a key.
 */
export async function loadOrCreateDpopKey(path: string): Promise<DpopKey> {
  const existing = await readKeyFile(path);
  if (existing !== undefined) return existing;
  const key = await generateDpopKey('ES256');
  await mkdir(dirname(path), { recursive: true });
  // Written whole under another name, then linked into place: a crash leaves no half-written key,
  // and of two agents starting at once on one directory the first link wins and both use its key.
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(temporary, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    throw new DpopKeyFileError(`cannot create the DPoP key file in ${dirname(path)} (${err.code}): the agent's state directory must be writable by it`);
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
    return (await readKeyFile(path))!;
  } finally {
    await unlink(temporary);
  }
  await syncDirectory(dirname(path));
  return key;
}

/** the key in the file; undefined when there is no file */
async function readKeyFile(path: string): Promise<DpopKey | undefined> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new DpopKeyFileError(`cannot read the DPoP key file ${path} (${err.code})`);
  });
  if (info === undefined) return undefined;
  if (!info.isFile()) throw new DpopKeyFileError(`the DPoP key file ${path} is not a regular file`);
  if ((info.mode & 0o077) !== 0) {
    throw new DpopKeyFileError(
      `the DPoP key file ${path} has mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}: other users may read the agent's private key; make it readable by the agent only (chmod 600 ${path})`,
    );
  }
  const pem = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new DpopKeyFileError(`cannot read the DPoP key file ${path} (${err.code}): it must be readable by the agent`);
  });
  try {
    return await dpopKeyFromPem(pem);
  } catch {
    throw new DpopKeyFileError(`the DPoP key file ${path} does not hold an EC P-256 or Ed25519 private key (PKCS#8 PEM); remove it to have a new key made`);
  }
}
