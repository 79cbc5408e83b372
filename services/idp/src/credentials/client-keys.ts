import { z } from 'zod';
import { ClientPublicJwk } from '@keyway/contracts';
import { Conflict } from '@keyway/kit';
import type { Store } from '@keyway/store';
import type { ClientKey } from '@keyway/tokens';

/** Enough for a key in use, the next one during a rotation and a spare; more is a sign of a leak. */
export const MAX_KEYS_PER_CLIENT = 5;

const StoredKeys = z.record(z.string(), z.object({ jwk: ClientPublicJwk, createdAt: z.string() }));
type StoredKeys = z.infer<typeof StoredKeys>;

/**
 * Whether two public JWKs are the same key: type, curve and coordinates (`alg`, `kid` aside). The
 * coordinates are compared as the bytes they encode, since a 32-byte base64url coordinate has two spare
 * bits and so two spellings. Plain comparison, not constant-time: both sides are public keys, and how
 * long it takes tells nothing secret.
 */
export function samePublicKey(a: ClientPublicJwk, b: ClientPublicJwk): boolean {
  const same = (p: string | undefined, q: string | undefined) => (p === undefined || q === undefined ? p === q : Buffer.from(p, 'base64url').equals(Buffer.from(q, 'base64url')));
  return a.kty === b.kty && a.crv === b.crv && same(a.x, b.x) && same('y' in a ? a.y : undefined, 'y' in b ? b.y : undefined);
}

/**
 * The public keys agents sign their RFC 7523 client assertions with, by subject and kid, and the
 * assertion ids already used. A subject's keys are one value changed with compare-and-set, so the cap
 * holds under concurrent registrations.
 */
export function clientKeyRepository(store: Store, now: () => Date = () => new Date()) {
  const keysKey = (sub: string) => `client-keys:${sub}`;
  const jtiKey = (sub: string, jti: string) => `assertion-jti:${sub}:${jti}`;

  const read = async (sub: string) => {
    const raw = await store.get(keysKey(sub));
    return { raw, keys: raw ? StoredKeys.parse(JSON.parse(raw)) : ({} as StoredKeys) };
  };

  /** Applies `change` to the subject's keys; retried when another writer got there first. */
  async function update(sub: string, change: (keys: StoredKeys) => StoredKeys | undefined): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const { raw, keys } = await read(sub);
      const next = change({ ...keys });
      if (!next) return false;
      if (await store.compareAndSet(keysKey(sub), raw, JSON.stringify(next))) return true;
    }
    throw new Conflict('the keys changed meanwhile; retry');
  }

  return {
    /** Adds or replaces a key; true when it is new. */
    async register(sub: string, kid: string, jwk: ClientPublicJwk): Promise<boolean> {
      let created = false;
      await update(sub, (keys) => {
        created = !(kid in keys);
        if (created && Object.keys(keys).length >= MAX_KEYS_PER_CLIENT) {
          throw new Conflict(`a client may register at most ${MAX_KEYS_PER_CLIENT} keys; remove one first`);
        }
        keys[kid] = { jwk: { ...jwk, kid }, createdAt: now().toISOString() };
        return keys;
      });
      return created;
    },

    /** false when there was no such key */
    remove(sub: string, kid: string): Promise<boolean> {
      return update(sub, (keys) => {
        if (!(kid in keys)) return undefined;
        delete keys[kid];
        return keys;
      });
    },

    /** Every key of a client whose credentials are removed. */
    async removeAll(sub: string): Promise<void> {
      await store.del(keysKey(sub));
    },

    /** The key named by kid; without a kid, the client's only key (ambiguous otherwise). */
    async find(sub: string, kid: string | undefined): Promise<ClientKey | undefined> {
      const { keys } = await read(sub);
      const entries = Object.entries(keys);
      const match = kid !== undefined ? entries.find(([id]) => id === kid) : entries.length === 1 ? entries[0] : undefined;
      return match && { jwk: match[1].jwk, alg: match[1].jwk.alg };
    },

    /** The kid under which the subject registered this public key (the first by kid if twice); undefined when it holds no such key. */
    async holding(sub: string, key: ClientPublicJwk): Promise<string | undefined> {
      const { keys } = await read(sub);
      return Object.keys(keys)
        .sort()
        .find((kid) => samePublicKey(keys[kid]!.jwk, key));
    },

    /** RFC 7523 §3 item 7: set-if-absent, kept until the assertion's exp (unix seconds) has passed. */
    claimJti(sub: string, jti: string, expiresAt: number): Promise<boolean> {
      const ttlMs = Math.max(1000, expiresAt * 1000 - now().getTime());
      return store.set(jtiKey(sub, jti), '1', { ttlMs, ifAbsent: true });
    },
  };
}
export type ClientKeyRepository = ReturnType<typeof clientKeyRepository>;
