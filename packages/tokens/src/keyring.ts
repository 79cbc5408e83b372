import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK, type JWTVerifyGetKey } from 'jose';

export const SIGNING_ALG = 'ES256';

export type KeyState = 'next' | 'active' | 'retiring';

export interface SigningKey {
  kid: string;
  state: KeyState;
  createdAt: number;
  /** a retiring key stays published until this time (ms): the last expiry of a token it signed */
  retireAfter?: number;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

interface StoredKey {
  kid: string;
  state: KeyState;
  createdAt: number;
  retireAfter?: number;
  privateJwk: JWK;
}

/**
 * Signing keys by kid. A new key is published (state "next") before it signs, becomes "active" on
 * the next rotation, and stays published as "retiring" until every token it signed has expired.
 */
export class KeyRing {
  private constructor(private keys: SigningKey[]) {}

  static async generate(now = Date.now()): Promise<KeyRing> {
    return new KeyRing([await newKey('active', now)]);
  }

  static async deserialize(json: string): Promise<KeyRing> {
    const stored = JSON.parse(json) as StoredKey[];
    const keys = await Promise.all(
      stored.map(async (s) => {
        const privateKey = (await importJWK(s.privateJwk, SIGNING_ALG)) as CryptoKey;
        const { d: _d, ...publicJwk } = s.privateJwk;
        return { kid: s.kid, state: s.state, createdAt: s.createdAt, retireAfter: s.retireAfter, privateKey, publicJwk };
      }),
    );
    return new KeyRing(keys);
  }

  async serialize(): Promise<string> {
    const stored: StoredKey[] = await Promise.all(
      this.keys.map(async (k) => ({
        kid: k.kid,
        state: k.state,
        createdAt: k.createdAt,
        retireAfter: k.retireAfter,
        privateJwk: await exportJWK(k.privateKey),
      })),
    );
    return JSON.stringify(stored);
  }

  active(): SigningKey {
    const key = this.keys.find((k) => k.state === 'active');
    if (!key) throw new Error('key ring has no active key');
    return key;
  }

  list(): readonly SigningKey[] {
    return this.keys;
  }

  /** Public keys to publish: next, active and retiring ones. */
  jwks(now = Date.now()): { keys: JWK[] } {
    return {
      keys: this.keys
        .filter((k) => k.state !== 'retiring' || (k.retireAfter ?? 0) > now)
        .map((k) => ({ ...k.publicJwk, kid: k.kid, alg: SIGNING_ALG, use: 'sig' })),
    };
  }

  localKeySet(now = Date.now()): JWTVerifyGetKey {
    return createLocalJWKSet(this.jwks(now));
  }

  /**
   * One rotation step: the published "next" key (made now if there is none) becomes active, the
   * active one retires once `longestTokenLifetimeMs` has passed, and a fresh "next" key is published
   * so that verifiers already hold it before it signs.
   */
  async rotate(longestTokenLifetimeMs: number, now = Date.now()): Promise<void> {
    const promoted = this.keys.find((k) => k.state === 'next') ?? (await newKey('next', now));
    const kept = this.keys.filter((k) => k !== promoted && (k.state !== 'retiring' || (k.retireAfter ?? 0) > now));
    for (const k of kept) {
      if (k.state === 'active') {
        k.state = 'retiring';
        k.retireAfter = now + longestTokenLifetimeMs;
      }
    }
    promoted.state = 'active';
    this.keys = [...kept, promoted, await newKey('next', now)];
  }
}

async function newKey(state: KeyState, now: number): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  return { kid: randomUUID(), state, createdAt: now, privateKey, publicJwk: await exportJWK(publicKey) };
}
