import type { Store } from '@keyway/store';
import { rewrap, SEALED_PATTERN } from './envelope.ts';
import type { Keyring } from './keyring.ts';

/** A record that keeps changing under the rewrap (a service writing it) is retried this often, then reported. */
const MAX_ATTEMPTS = 5;

export interface RewrapResult {
  /** records (string values) that hold at least one sealed value */
  records: number;
  /** sealed values found */
  values: number;
  /** sealed values moved onto the current KEK by this run */
  moved: number;
}

async function readString(store: Store, key: string): Promise<string | null> {
  try {
    return await store.get(key);
  } catch (err) {
    // Sets, hashes and streams hold no sealed value: only string records are sealed.
    if (err instanceof Error && err.message.startsWith('WRONGTYPE')) return null;
    throw err;
  }
}

async function replaceAsync(text: string, replace: (sealed: string) => Promise<string>): Promise<string> {
  const found = text.match(SEALED_PATTERN) ?? [];
  const replaced = await Promise.all(found.map(replace));
  let i = 0;
  return text.replace(SEALED_PATTERN, () => replaced[i++]!);
}

/**
 * Moves every sealed value in the string records under `keyPrefixes` onto the keyring's current KEK.
 * Each record is written with compare-and-set, so a service writing it meanwhile wins and the record
 * is read again; values already under the current KEK are left alone, so a second run moves nothing.
 */
export async function rewrapStore(store: Store, keyring: Keyring, keyPrefixes: string[] = ['']): Promise<RewrapResult> {
  const result: RewrapResult = { records: 0, values: 0, moved: 0 };
  const keys = new Set((await Promise.all(keyPrefixes.map((prefix) => store.keys(prefix)))).flat());
  for (const key of [...keys].sort()) {
    for (let attempt = 1; ; attempt += 1) {
      const raw = await readString(store, key);
      const values = raw?.match(SEALED_PATTERN)?.length ?? 0;
      if (raw === null || values === 0) break;
      let moved = 0;
      const next = await replaceAsync(raw, async (sealed) => {
        const wrapped = await rewrap(keyring, sealed);
        if (wrapped !== sealed) moved += 1;
        return wrapped;
      });
      if (moved === 0 || (await store.compareAndSet(key, raw, next))) {
        result.records += 1;
        result.values += values;
        result.moved += moved;
        break;
      }
      if (attempt === MAX_ATTEMPTS) throw new Error(`record ${key} changed ${MAX_ATTEMPTS} times during the rewrap; run it again`);
    }
  }
  return result;
}
