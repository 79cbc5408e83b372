import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSshPrivateKey, publicKeyFromKeyObject, publicKeyLine, SshFormatError } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'keyway-ssh-private-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('an Ed25519 private key in the OpenSSH format', () => {
  it('is read by Debian’s ssh-keygen as the same key, with its comment', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const path = join(dir, 'id_ed25519');
    writeFileSync(path, openSshPrivateKey(privateKey, 'person@example'), { mode: 0o600 });
    // -y reads the private key and prints its public half
    const derived = execFileSync('ssh-keygen', ['-y', '-f', path], { encoding: 'utf8' }).trim();
    expect(derived).toBe(publicKeyLine(publicKeyFromKeyObject(privateKey), 'person@example'));
  });

  it('is refused for other keys', () => {
    expect(() => openSshPrivateKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)).toThrow(SshFormatError);
    expect(() => openSshPrivateKey(generateKeyPairSync('ed25519').publicKey)).toThrow(SshFormatError);
  });
});
