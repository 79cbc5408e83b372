import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkpointSigned, loadCheckpointPublicKey, loadCheckpointSigner, signCheckpoint } from './checkpoint.ts';

describe('checkpoint key', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('in development, a missing key is generated 0600 with its public key beside it, and kept across restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyway-cp-'));
    dirs.push(dir);
    const file = join(dir, 'pki', 'audit-checkpoint.key');
    const [a, b] = await Promise.all([loadCheckpointSigner(file, { generate: true }), loadCheckpointSigner(file, { generate: true })]);
    expect(a.keyId).toBe(b.keyId);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(`${file}.pub`, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect((await loadCheckpointSigner(file)).keyId).toBe(a.keyId);

    const checkpoint = signCheckpoint(a, { stream: 'pas', seq: 7, hash: 'a'.repeat(64), time: '2026-01-01T00:00:00.000Z' });
    const publicKey = await loadCheckpointPublicKey(`${file}.pub`);
    expect(checkpointSigned(checkpoint, publicKey)).toBe(true);
    expect(checkpointSigned({ ...checkpoint, seq: 8 }, publicKey)).toBe(false);
    expect(checkpointSigned({ ...checkpoint, time: '2026-01-01T00:00:01.000Z' }, publicKey)).toBe(false);
  });

  it('in production, a missing key file is an error, not a new key', async () => {
    await expect(loadCheckpointSigner(join(tmpdir(), 'keyway-no-such-dir', 'audit-checkpoint.key'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
