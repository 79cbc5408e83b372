import { randomUUID } from 'node:crypto';
import { localSigner, type Signer } from './signer.ts';
import { createLocalJWKSet, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK, type JWTVerifyGetKey } from 'jose';

export const SIGNING_ALG = 'ES256';

type KeyState = 'next' | 'active' | 'retiring';

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

  /** A new ring: the key that signs from now on, and the "next" one already published behind it. */
  static async generate(now = Date.now()): Promise<KeyRing> {
    return new KeyRing([await newKey('active', now), await newKey('next', now)]);
  }

  static async deserialize(json: string): Promise<KeyRing> {
    const stored = JSON.parse(json) as StoredKey[];
    const keys = await Promise.all(
      stored.map(async (s) => {
        // Extractable: a rotation serializes the ring again to store it.
        const privateKey = (await importJWK(s.privateJwk, SIGNING_ALG, { extractable: true })) as CryptoKey;
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

  /** What signs new tokens: the active key, through the Signer seam. */
  signer(): Signer {
    return localSigner(this.active());
  }

  /** The published key the next rotation promotes; undefined only in a ring stored before rings kept one. */
  next(): SigningKey | undefined {
    return this.keys.find((k) => k.state === 'next');
  }

  /** Publishes a "next" key unless there is one; true when it added one. */
  async publishNext(now = Date.now()): Promise<boolean> {
    if (this.next()) return false;
    this.keys = [...this.keys, await newKey('next', now)];
    return true;
  }

  list(): readonly SigningKey[] {
    return this.keys;
  }

  /** Whether verifiers are shown the key: a retiring key is withdrawn once its last token has expired. */
  isPublished(key: SigningKey, now = Date.now()): boolean {
    return key.state !== 'retiring' || (key.retireAfter ?? 0) > now;
  }

  /** Public keys to publish: next, active and retiring ones. */
  jwks(now = Date.now()): { keys: JWK[] } {
    return {
      keys: this.keys.filter((k) => this.isPublished(k, now)).map((k) => ({ ...k.publicJwk, kid: k.kid, alg: SIGNING_ALG, use: 'sig' })),
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
    const kept = this.keys.filter((k) => k !== promoted && this.isPublished(k, now));
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
