import { KeyRing } from '@keyway/tokens';
import type { Logger } from '@keyway/kit';
import type { Keyring } from '@keyway/seal';
import type { Store } from '@keyway/store';
import { openRing, sealRing } from './sealed-ring.ts';

const RING_KEY = 'signing-keys';
export const DEFAULT_KEY_RING_RELOAD_SEC = 30;
/** Writers that lose a compare-and-set read again; more losses than this in a row means something is wrong. */
const MAX_ATTEMPTS = 5;

/** The ring and the exact stored text it was read from, so a writer can compare-and-set against it. */
export interface StoredKeyRing {
  ring: KeyRing;
  raw: string;
}

/**
 * Every PAS instance signs with the same ring, kept in PAS's store, so restarts and replicas do not
 * invalidate tokens in flight. The first instance to start creates it (set-if-absent wins). A ring
 * stored before rings kept a published "next" key is given one here, so the next rotation promotes
 * a key verifiers already hold (design.md: "new key published before it signs"). Private keys are
 * stored sealed under the KEK (sealed-ring.ts); a ring stored in plaintext before that is sealed here.
 */
export async function loadStoredKeyRing(store: Store, kek: Keyring): Promise<StoredKeyRing> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    const raw = await store.get(RING_KEY);
    if (raw === null) {
      const fresh = await KeyRing.generate();
      const serialized = await sealRing(fresh, kek);
      if (await store.set(RING_KEY, serialized, { ifAbsent: true })) return { ring: fresh, raw: serialized };
      continue;
    }
    const { ring, sealed } = await openRing(raw, kek);
    if (!(await ring.publishNext()) && sealed) return { ring, raw };
    const saved = await saveKeyRing(store, kek, ring, raw);
    if (saved !== undefined) return { ring, raw: saved };
  }
  throw new Error(`the signing key ring changed ${MAX_ATTEMPTS} times while being loaded`);
}

export async function loadKeyRing(store: Store, kek: Keyring): Promise<KeyRing> {
  return (await loadStoredKeyRing(store, kek)).ring;
}

/**
 * Persists the ring only if the stored one is still `expected` (compare-and-set), so two instances
 * rotating at once cannot both win and publish different "next" keys. Returns the stored text, or
 * undefined when another writer changed the ring first.
 */
export async function saveKeyRing(store: Store, kek: Keyring, ring: KeyRing, expected: string): Promise<string | undefined> {
  const serialized = await sealRing(ring, kek);
  return (await store.compareAndSet(RING_KEY, expected, serialized)) ? serialized : undefined;
}

/** What token issuance and the JWKS read: the ring as this instance last loaded it. */
export interface CurrentKeyRing {
  /** read it for each use and never keep it: a reload replaces it */
  current(): KeyRing;
}

export interface SharedKeyRing extends CurrentKeyRing {
  /** how often the ring is reloaded from the store */
  readonly reloadMs: number;
  /** the KEKs its private keys are sealed under in the store */
  readonly kek: Keyring;
  /** reads the stored ring now (this instance calls it right after its own rotation) */
  reload(): Promise<KeyRing>;
  /** stops the periodic reload */
  close(): void;
}

/**
 * The ring shared by every PAS instance through the store. Each instance reloads it every
 * `reloadMs`, so within one reload period of a rotation every instance publishes the same keys
 * and signs with the same active key. Reloads run one at a time, so a slow reload that read the
 * ring before a rotation cannot overwrite the rotated ring read after it. A failed reload keeps
 * the ring in hand (it still verifies and signs correctly) and is retried on the next tick.
 */
export async function sharedKeyRing(store: Store, options: { kek: Keyring; reloadMs: number; logger: Logger }): Promise<SharedKeyRing> {
  let { ring, raw } = await loadStoredKeyRing(store, options.kek);
  let queue: Promise<KeyRing> = Promise.resolve(ring);

  const readStored = async (): Promise<KeyRing> => {
    const stored = await store.get(RING_KEY);
    if (stored === null) throw new Error('the signing key ring is missing from the store');
    if (stored !== raw) {
      ({ ring } = await openRing(stored, options.kek));
      raw = stored;
    }
    return ring;
  };
  const reload = (): Promise<KeyRing> => {
    queue = queue.then(readStored, readStored);
    return queue;
  };

  const timer = setInterval(() => {
    reload().catch((err: unknown) => options.logger.warn('signing_keys.reload_failed', { err }));
  }, options.reloadMs);
  timer.unref();

  return {
    reloadMs: options.reloadMs,
    kek: options.kek,
    current: () => ring,
    reload,
    close: () => clearInterval(timer),
  };
}
