import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureDevKek, Keyring, SealError } from '@keyway/seal';
import { createMemoryStore } from '@keyway/store';
import { KeyRing } from '@keyway/tokens';
import { loadKeyRing } from './ring.ts';

const kek = await Keyring.open(await ensureDevKek(await mkdtemp(join(tmpdir(), 'keyway-pas-'))));
type Stored = { kid: string; state: string; privateJwk: unknown }[];
const stored = (raw: string | null) => JSON.parse(raw!) as Stored;

describe('the signing key ring sealed at rest', () => {
  it('stores every private key sealed, bound to its kid, and reads it back', async () => {
    const store = createMemoryStore({ prefix: 'pas:' });
    const ring = await loadKeyRing(store, kek);
    const raw = stored(await store.get('signing-keys'));
    expect(raw.map((k) => k.kid)).toEqual(ring.list().map((k) => k.kid));
    for (const k of raw) expect(k.privateJwk).toMatch(/^kwsealed:v1:dev-1:/);
    expect((await loadKeyRing(store, kek)).active().kid).toBe(ring.active().kid);

    // A sealed key moved under another kid does not open: the ring is refused, not read with a swapped key.
    const [a, b] = raw;
    await store.set(
      'signing-keys',
      JSON.stringify([
        { ...a, privateJwk: b!.privateJwk },
        { ...b, privateJwk: a!.privateJwk },
      ]),
    );
    await expect(loadKeyRing(store, kek)).rejects.toBeInstanceOf(SealError);
  });

  it('a ring stored in plaintext before sealing is read and stored again sealed on first read', async () => {
    const store = createMemoryStore({ prefix: 'pas:' });
    const legacy = await KeyRing.generate();
    await store.set('signing-keys', await legacy.serialize());
    const ring = await loadKeyRing(store, kek);
    expect(ring.list().map((k) => k.kid)).toEqual(legacy.list().map((k) => k.kid));
    const raw = stored(await store.get('signing-keys'));
    expect(raw.map((k) => k.kid)).toEqual(legacy.list().map((k) => k.kid));
    for (const k of raw) expect(k.privateJwk).toMatch(/^kwsealed:v1:/);
    // the same keys: a token signed before the migration still verifies against the sealed ring's JWKS
    expect(ring.jwks()).toEqual(legacy.jwks());
  });
});
