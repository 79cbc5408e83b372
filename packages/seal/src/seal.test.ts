import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createRedisStore } from '@keyway/store';
import { ensureDevKek, Keyring, kekIdOf, rewrapStore, SealError, seal, unseal } from './index.ts';

const REDIS_URL = process.env.KEYWAY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const dir = await mkdtemp(join(tmpdir(), 'keyway-seal-'));
const kek = (id: string) => ({ id, key: randomBytes(32).toString('base64') });

async function keyringFile(file: { current: string; keks: { id: string; key: string }[] }, mode = 0o600): Promise<string> {
  const path = join(dir, `${randomUUID()}.json`);
  await writeFile(path, JSON.stringify(file), { mode });
  await chmod(path, mode);
  return path;
}

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'opened',
    (err: unknown) => (err instanceof SealError ? err.code : String(err)),
  );

describe('envelope: AES-256-GCM data key per value, wrapped by the current KEK', () => {
  it('round-trips, and a value sealed twice never looks the same', async () => {
    const keyring = await Keyring.open(await keyringFile({ current: 'k1', keks: [kek('k1')] }));
    const secret = 'the private key';
    const [a, b] = [await seal(keyring, secret, 'pas/signing-key/kid-1'), await seal(keyring, secret, 'pas/signing-key/kid-1')];
    expect(a).toMatch(/^kwsealed:v1:k1:/);
    expect(a).not.toBe(b);
    expect(a).not.toContain(Buffer.from(secret).toString('base64'));
    expect((await unseal(keyring, a, 'pas/signing-key/kid-1')).toString()).toBe(secret);
    expect((await unseal(keyring, b, 'pas/signing-key/kid-1')).toString()).toBe(secret);
  });

  it('a value moved to another record (another context) does not open', async () => {
    const keyring = await Keyring.open(await keyringFile({ current: 'k1', keks: [kek('k1')] }));
    const sealed = await seal(keyring, 'root key', 'pac/sas-root/acme/primary');
    expect(await codeOf(unseal(keyring, sealed, 'pac/sas-root/globex/primary'))).toBe('ERR_SEAL_INTEGRITY');
    expect(await codeOf(unseal(keyring, sealed, 'pac/sas-root/acme/secondary'))).toBe('ERR_SEAL_INTEGRITY');
  });

  it('tampering with any part is refused with a clear error, never plaintext', async () => {
    const keyring = await Keyring.open(await keyringFile({ current: 'k1', keks: [kek('k1'), kek('k2')] }));
    const sealed = await seal(keyring, 'root key', 'ctx');
    const parts = sealed.split(':');
    const flip = (b64: string) => {
      const bytes = Buffer.from(b64, 'base64url');
      bytes[0]! ^= 1;
      return bytes.toString('base64url');
    };
    const with_ = (index: number, value: string) => parts.map((p, i) => (i === index ? value : p)).join(':');
    const outcomes = {
      prefix: await codeOf(unseal(keyring, with_(0, 'kwsealer'), 'ctx')),
      version: await codeOf(unseal(keyring, with_(1, 'v2'), 'ctx')),
      kekToAnotherKnown: await codeOf(unseal(keyring, with_(2, 'k2'), 'ctx')),
      kekToUnknown: await codeOf(unseal(keyring, with_(2, 'k9'), 'ctx')),
      wrapIv: await codeOf(unseal(keyring, with_(3, flip(parts[3]!)), 'ctx')),
      wrappedDek: await codeOf(unseal(keyring, with_(4, flip(parts[4]!)), 'ctx')),
      iv: await codeOf(unseal(keyring, with_(5, flip(parts[5]!)), 'ctx')),
      ciphertext: await codeOf(unseal(keyring, with_(6, flip(parts[6]!)), 'ctx')),
      truncated: await codeOf(unseal(keyring, with_(6, parts[6]!.slice(0, -4)), 'ctx')),
      extraPart: await codeOf(unseal(keyring, `${sealed}:x`, 'ctx')),
    };
    expect(outcomes).toEqual({
      prefix: 'ERR_SEAL_MALFORMED',
      version: 'ERR_SEAL_MALFORMED',
      kekToAnotherKnown: 'ERR_SEAL_INTEGRITY',
      kekToUnknown: 'ERR_SEAL_UNKNOWN_KEK',
      wrapIv: 'ERR_SEAL_INTEGRITY',
      wrappedDek: 'ERR_SEAL_INTEGRITY',
      iv: 'ERR_SEAL_INTEGRITY',
      ciphertext: 'ERR_SEAL_INTEGRITY',
      truncated: 'ERR_SEAL_INTEGRITY',
      extraPart: 'ERR_SEAL_MALFORMED',
    });
    expect((await unseal(keyring, sealed, 'ctx')).toString()).toBe('root key');
  });

  it('a value under a KEK added to the file after the keyring was read is opened (the file is read again)', async () => {
    const k1 = kek('k1');
    const k2 = kek('k2');
    const path = await keyringFile({ current: 'k1', keks: [k1] });
    const early = await Keyring.open(path);
    await writeFile(path, JSON.stringify({ current: 'k2', keks: [k1, k2] }));
    const sealedUnderK2 = await seal(await Keyring.open(path), 'new', 'ctx');
    expect(kekIdOf(sealedUnderK2)).toBe('k2');
    expect((await unseal(early, sealedUnderK2, 'ctx')).toString()).toBe('new');
    expect(await codeOf(unseal(early, sealedUnderK2.replace(':k2:', ':k3:'), 'ctx'))).toBe('ERR_SEAL_UNKNOWN_KEK');
  });
});

describe('keyring file', () => {
  it('refuses a file group or others can read, naming the fix', async () => {
    for (const mode of [0o640, 0o604, 0o660]) {
      const path = await keyringFile({ current: 'k1', keks: [kek('k1')] }, mode);
      await expect(Keyring.open(path)).rejects.toThrow(/accessible by group or others .*chmod 600/);
    }
  });

  it('takes a 0440 file in $CREDENTIALS_DIRECTORY (systemd >= 256 LoadCredential=: 0400 plus an ACL), but not one outside it or one others can read', async () => {
    const credentials = await mkdtemp(join(dir, 'credentials-'));
    const inside = join(credentials, 'kek.json');
    await writeFile(inside, JSON.stringify({ current: 'k1', keks: [kek('k1')] }), { mode: 0o440 });
    await chmod(inside, 0o440);
    const outside = await keyringFile({ current: 'k1', keks: [kek('k1')] }, 0o440);
    const escaping = join(credentials, 'link.json');
    await symlink(outside, escaping);
    const readable = join(credentials, 'others.json');
    await writeFile(readable, JSON.stringify({ current: 'k1', keks: [kek('k1')] }), { mode: 0o444 });
    await chmod(readable, 0o444);
    vi.stubEnv('CREDENTIALS_DIRECTORY', credentials);
    try {
      expect((await Keyring.open(inside)).currentId).toBe('k1');
      expect(await codeOf(Keyring.open(outside))).toBe('ERR_KEK_FILE');
      expect(await codeOf(Keyring.open(escaping)), 'a symlink out of the directory').toBe('ERR_KEK_FILE');
      expect(await codeOf(Keyring.open(readable))).toBe('ERR_KEK_FILE');
    } finally {
      vi.unstubAllEnvs();
    }
    expect(await codeOf(Keyring.open(inside)), 'without CREDENTIALS_DIRECTORY').toBe('ERR_KEK_FILE');
  });

  it('refuses a file that is not a keyring: short key, current not among the KEKs, duplicate ids', async () => {
    const bad = [
      { current: 'k1', keks: [{ id: 'k1', key: randomBytes(16).toString('base64') }] },
      { current: 'k2', keks: [kek('k1')] },
      { current: 'k1', keks: [kek('k1'), kek('k1')] },
    ];
    for (const file of bad) expect(await codeOf(Keyring.open(await keyringFile(file)))).toBe('ERR_KEK_FILE');
  });

  it('ensureDevKek makes a 0600 keyring once and keeps it', async () => {
    const devDir = join(dir, randomUUID());
    const path = await ensureDevKek(devDir);
    const keyring = await Keyring.open(path);
    const sealed = await seal(keyring, 'x', 'ctx');
    expect(await ensureDevKek(devDir)).toBe(path);
    expect((await unseal(await Keyring.open(path), sealed, 'ctx')).toString()).toBe('x');
  });
});

const store = await createRedisStore({ url: REDIS_URL, prefix: `keyway-test:${randomUUID()}:` });
describe('rewrapStore (Redis)', () => {
  afterAll(async () => {
    await store.del(...(await store.keys('')));
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('moves every sealed value onto the current KEK, after which the old KEK can be removed', async () => {
    const k1 = kek('k1');
    const k2 = kek('k2');
    const path = await keyringFile({ current: 'k1', keks: [k1] });
    const before = await Keyring.open(path);
    await store.set(
      'ring',
      JSON.stringify([
        { kid: 'a', privateJwk: await seal(before, 'a-key', 'ring/a') },
        { kid: 'b', privateJwk: await seal(before, 'b-key', 'ring/b') },
      ]),
    );
    await store.set('tenant:acme', JSON.stringify({ primary: await seal(before, 'p', 'acme/primary'), generation: 3 }));
    await store.set('plain', 'no sealed value here');
    await store.sadd('a-set', 'member');

    await writeFile(path, JSON.stringify({ current: 'k2', keks: [k1, k2] }));
    const during = await Keyring.open(path);
    expect(await rewrapStore(store, during)).toEqual({ records: 2, values: 3, moved: 3 });
    expect(await rewrapStore(store, during)).toEqual({ records: 2, values: 3, moved: 0 });

    await writeFile(path, JSON.stringify({ current: 'k2', keks: [k2] }));
    const after = await Keyring.open(path);
    const ring = JSON.parse((await store.get('ring'))!) as { kid: string; privateJwk: string }[];
    expect(ring.map((k) => kekIdOf(k.privateJwk))).toEqual(['k2', 'k2']);
    expect((await unseal(after, ring[1]!.privateJwk, 'ring/b')).toString()).toBe('b-key');
    const tenant = JSON.parse((await store.get('tenant:acme'))!) as { primary: string; generation: number };
    expect(tenant.generation).toBe(3);
    expect((await unseal(after, tenant.primary, 'acme/primary')).toString()).toBe('p');
    expect(await store.get('plain')).toBe('no sealed value here');
  });
});
