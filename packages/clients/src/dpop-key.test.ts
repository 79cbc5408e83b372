import { chmod, mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DpopKeyFileError, loadOrCreateDpopKey, readDpopKeyFile } from './dpop-key.ts';

const stateDir = () => mkdtemp(join(tmpdir(), 'keyway-dpop-key-'));

describe('a DPoP key file (the importer’s, the CLI’s)', () => {
  it('is made on first start (ES256, PKCS#8, mode 0600, nothing left beside it) and the same key after a restart', async () => {
    const dir = await stateDir();
    const path = join(dir, 'state', 'dpop-key.pem');
    const first = await loadOrCreateDpopKey(path);
    expect(first.alg).toBe('ES256');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readFile(path, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(await readdir(join(dir, 'state'))).toEqual(['dpop-key.pem']);
    const restarted = await loadOrCreateDpopKey(path);
    expect(restarted.jkt).toBe(first.jkt);
    expect((await readDpopKeyFile(path))?.jkt).toBe(first.jkt);
    expect(await readDpopKeyFile(join(dir, 'state', 'none.pem'))).toBeUndefined();
  });

  it('two processes starting at once on one directory end up with one key', async () => {
    const path = join(await stateDir(), 'dpop-key.pem');
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateDpopKey(path)));
    expect(new Set(keys.map((key) => key.jkt)).size).toBe(1);
    expect((await loadOrCreateDpopKey(path)).jkt).toBe(keys[0]!.jkt);
  });

  it('refuses a key file other users may read (0644, 0640), saying how to fix it', async () => {
    const path = join(await stateDir(), 'dpop-key.pem');
    await loadOrCreateDpopKey(path);
    for (const mode of [0o644, 0o640, 0o604]) {
      await chmod(path, mode);
      const refusal = await loadOrCreateDpopKey(path).catch((err: unknown) => err);
      expect(refusal).toBeInstanceOf(DpopKeyFileError);
      expect((refusal as Error).message).toContain(`mode 0${mode.toString(8)}`);
      expect((refusal as Error).message).toContain('chmod 600');
    }
  });

  it('refuses a file that is not a key, and a path that is not a file', async () => {
    const dir = await stateDir();
    const path = join(dir, 'dpop-key.pem');
    await writeFile(path, 'not a key', { mode: 0o600 });
    await expect(loadOrCreateDpopKey(path)).rejects.toThrow(/does not hold an EC P-256 or Ed25519 private key/);
    await mkdir(join(dir, 'a-directory'), { mode: 0o700 });
    await expect(loadOrCreateDpopKey(join(dir, 'a-directory'))).rejects.toThrow(/is not a regular file/);
  });
});
