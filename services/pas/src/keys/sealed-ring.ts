import { z } from 'zod';
import { seal, unseal, type Keyring } from '@keyway/seal';
import { KeyRing } from '@keyway/tokens';

/** A stored key: its private JWK sealed (a kwsealed string), or a plain JWK object in a ring stored before sealing. */
const StoredKeys = z.array(z.looseObject({ kid: z.string().min(1), privateJwk: z.union([z.string(), z.record(z.string(), z.unknown())]) }));

/** AAD of a sealed private key: it opens only as the key of its own kid. */
const sealContext = (kid: string) => `pas/signing-key/${kid}`;

/** The ring as it is stored: every private JWK sealed under the current KEK, the rest (kid, state, dates) in the clear. */
export async function sealRing(ring: KeyRing, kek: Keyring): Promise<string> {
  const keys = StoredKeys.parse(JSON.parse(await ring.serialize()));
  return JSON.stringify(await Promise.all(keys.map(async (k) => ({ ...k, privateJwk: await seal(kek, JSON.stringify(k.privateJwk), sealContext(k.kid)) }))));
}

/**
 * The ring from its stored text. `sealed` is false for a ring stored in plaintext before keys were
 * sealed: it is read, and the caller stores it again sealed (compare-and-set), so it is sealed on first read.
 */
export async function openRing(raw: string, kek: Keyring): Promise<{ ring: KeyRing; sealed: boolean }> {
  const keys = StoredKeys.parse(JSON.parse(raw));
  const opened = await Promise.all(
    keys.map(async (k) => (typeof k.privateJwk === 'string' ? { ...k, privateJwk: JSON.parse((await unseal(kek, k.privateJwk, sealContext(k.kid))).toString('utf8')) as unknown } : k)),
  );
  return { ring: await KeyRing.deserialize(JSON.stringify(opened)), sealed: keys.every((k) => typeof k.privateJwk === 'string') };
}
