import { KeyRing } from '@keyway/tokens';
import type { Store } from '@keyway/store';

const RING_KEY = 'signing-keys';

/**
 * Every PAS instance signs with the same ring, kept in PAS's store, so restarts and replicas do not
 * invalidate tokens in flight. The first instance to start creates it (set-if-absent wins).
 */
export async function loadKeyRing(store: Store): Promise<KeyRing> {
  const existing = await store.get(RING_KEY);
  if (existing) return KeyRing.deserialize(existing);
  const fresh = await KeyRing.generate();
  if (await store.set(RING_KEY, await fresh.serialize(), { ifAbsent: true })) return fresh;
  return KeyRing.deserialize((await store.get(RING_KEY))!);
}
