import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureDevKek, Keyring, SealError } from '@keyway/seal';
import { createMemoryStore } from '@keyway/store';
import { tenantKeys } from './tenant-keys.ts';

const kek = await Keyring.open(await ensureDevKek(await mkdtemp(join(tmpdir(), 'keyway-pac-'))));
type Stored = { primary: string; secondary: string; signWith: string; generation: number };
const stored = async (store: ReturnType<typeof createMemoryStore>, tenant: string) => JSON.parse((await store.get(`tenant-keys:${tenant}`))!) as Stored;

describe('tenant SAS root keys sealed at rest', () => {
  it('stores both keys sealed, bound to tenant and key name, through minting and rotation', async () => {
    const store = createMemoryStore({ prefix: 'pac:' });
    const keys = tenantKeys(store, kek);
    const made = await keys.get('acme');
    const raw = await stored(store, 'acme');
    expect(raw.primary).toMatch(/^kwsealed:v1:/);
    expect(raw.secondary).toMatch(/^kwsealed:v1:/);
    expect(JSON.stringify(raw)).not.toContain(made.primary);
    expect(await keys.find('acme')).toEqual(made);

    const rotated = (await keys.rotate('acme', 'secondary'))!;
    expect(rotated).toMatchObject({ primary: made.primary, signWith: 'secondary', generation: 1 });
    expect(await keys.signingKey('acme')).toBe(rotated.secondary);
    expect((await stored(store, 'acme')).secondary).toMatch(/^kwsealed:v1:/);

    // acme's sealed primary put in globex's record does not open as globex's
    await keys.get('globex');
    await store.set('tenant-keys:globex', JSON.stringify({ ...(await stored(store, 'globex')), primary: (await stored(store, 'acme')).primary }));
    await expect(keys.find('globex')).rejects.toBeInstanceOf(SealError);
  });

  it('keys stored in plaintext before sealing are read and stored again sealed on first read', async () => {
    const store = createMemoryStore({ prefix: 'pac:' });
    const legacy = { primary: Buffer.alloc(32, 1).toString('base64'), secondary: Buffer.alloc(32, 2).toString('base64'), signWith: 'secondary', generation: 4 };
    await store.set('tenant-keys:acme', JSON.stringify(legacy));
    expect(await tenantKeys(store, kek).find('acme')).toEqual(legacy);
    const raw = await stored(store, 'acme');
    expect(raw).toMatchObject({ signWith: 'secondary', generation: 4 });
    expect(raw.primary).toMatch(/^kwsealed:v1:/);
    expect(JSON.stringify(raw)).not.toContain(legacy.primary);
    expect(await tenantKeys(store, kek).find('acme')).toEqual(legacy);
  });
});
