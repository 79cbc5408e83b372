import { randomBytes } from 'node:crypto';
import { mkdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { z } from 'zod';
import { SealError } from './errors.ts';

const KEK_BYTES = 32;
/** How often sealing looks at the file's mtime: a new current KEK is sealed under within this much of being written. */
const CURRENT_CHECK_MS = 5000;

const KekId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a KEK id is 1-64 of A-Z a-z 0-9 _ -');
const Kek = z.object({
  id: KekId,
  key: z.string().refine((b64) => Buffer.from(b64, 'base64').toString('base64') === b64 && Buffer.from(b64, 'base64').length === KEK_BYTES, `must be ${KEK_BYTES} bytes in canonical base64`),
});
/** The keyring file: every KEK a sealed value may be under, and the one new values are sealed under. */
const KeyringFile = z
  .object({ current: KekId, keks: z.array(Kek).min(1) })
  .refine((file) => new Set(file.keks.map((k) => k.id)).size === file.keks.length, 'KEK ids must be unique')
  .refine((file) => file.keks.some((k) => k.id === file.current), '"current" must name one of "keks"');
type KeyringFile = z.infer<typeof KeyringFile>;

interface Loaded {
  current: string;
  keks: Map<string, Buffer>;
  mtimeMs: number;
}

/**
 * Whether `path` (symlinks resolved) lies in systemd's credentials directory for this unit
 * ($CREDENTIALS_DIRECTORY, LoadCredential=). systemd >= 256 writes a credential 0400 plus an ACL for
 * the unit's user, which stat shows as 0440 (the ACL mask in the group bits); the directory is the
 * unit's alone, so there the group bits do not mean a group reads it.
 */
async function inCredentialsDirectory(path: string): Promise<boolean> {
  const dir = process.env.CREDENTIALS_DIRECTORY;
  if (!dir) return false;
  try {
    const inside = relative(await realpath(dir), await realpath(path));
    return inside !== '' && !inside.startsWith('..') && !isAbsolute(inside);
  } catch {
    return false;
  }
}

async function readKeyringFile(path: string): Promise<Loaded> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (err) {
    throw new SealError('ERR_KEK_FILE', `KEK file ${path}: ${(err as Error).message}`);
  }
  // Like ssh with a private key: a KEK others can read is no secret, so refuse rather than warn.
  const refused = (await inCredentialsDirectory(path)) ? 0o007 : 0o077;
  if ((info.mode & refused) !== 0) {
    throw new SealError('ERR_KEK_FILE', `KEK file ${path} is accessible by group or others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`);
  }
  let parsed: KeyringFile;
  try {
    parsed = KeyringFile.parse(JSON.parse(await readFile(path, 'utf8')));
  } catch (err) {
    const why = err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') : (err as Error).message;
    throw new SealError('ERR_KEK_FILE', `KEK file ${path} is not a keyring: ${why}`);
  }
  return { current: parsed.current, keks: new Map(parsed.keks.map((k) => [k.id, Buffer.from(k.key, 'base64')])), mtimeMs: info.mtimeMs };
}

/**
 * The key-encryption keys of one keyring file. Rotation without downtime (Vault's keyring, Hydra's
 * secrets.system): the operator adds a KEK and makes it current in the file, every process picks it
 * up (a value under an unknown KEK re-reads the file; sealing re-reads it when it changed), `keyway
 * keys rewrap` moves every value onto it, then the old KEK is removed from the file.
 */
export class Keyring {
  private checkedAt = Date.now();

  private constructor(
    readonly path: string,
    private loaded: Loaded,
  ) {}

  static async open(path: string): Promise<Keyring> {
    return new Keyring(path, await readKeyringFile(path));
  }

  get currentId(): string {
    return this.loaded.current;
  }

  /** The current KEK, re-reading the file when it changed since the last look (at most every few seconds). */
  async current(): Promise<{ id: string; key: Buffer }> {
    if (Date.now() - this.checkedAt >= CURRENT_CHECK_MS) {
      this.checkedAt = Date.now();
      const { mtimeMs } = await stat(this.path);
      if (mtimeMs !== this.loaded.mtimeMs) this.loaded = await readKeyringFile(this.path);
    }
    return { id: this.loaded.current, key: this.loaded.keks.get(this.loaded.current)! };
  }

  /** A KEK by id; an id not known yet re-reads the file once (the operator added it since). */
  async kek(id: string): Promise<Buffer> {
    const known = this.loaded.keks.get(id);
    if (known) return known;
    this.loaded = await readKeyringFile(this.path);
    this.checkedAt = Date.now();
    const found = this.loaded.keks.get(id);
    if (!found) throw new SealError('ERR_SEAL_UNKNOWN_KEK', `sealed under KEK "${id}", which the keyring ${this.path} does not hold`);
    return found;
  }
}

const DEV_KEK_FILE = 'kek.json';

/**
 * A development keyring (one KEK, mode 0600) in `dir`, made when absent, as ensureDevPki makes the
 * dev CA: never for production, where KEYWAY_KEK_FILE names a file the operator provides.
 */
export async function ensureDevKek(dir: string): Promise<string> {
  const path = join(dir, DEV_KEK_FILE);
  const file: KeyringFile = { current: 'dev-1', keks: [{ id: 'dev-1', key: randomBytes(KEK_BYTES).toString('base64') }] };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    // wx: two processes starting at once keep the first file, never a mix.
    await writeFile(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return path;
}
