import { describe, expect, it } from 'vitest';
import { Conflict } from '@keyway/kit';
import { createMemoryStore } from '@keyway/store';
import { clientKeyRepository, MAX_KEYS_PER_CLIENT, samePublicKey } from './client-keys.ts';

const x = (c: string) => c.repeat(43);
const ecKey = (c: string) => ({ kty: 'EC' as const, crv: 'P-256' as const, x: x(c), y: x(c), alg: 'ES256' as const });
const edKey = (c: string) => ({ kty: 'OKP' as const, crv: 'Ed25519' as const, x: x(c), alg: 'EdDSA' as const });

describe('client key repository', () => {
  it('adds and replaces keys by kid, finds them, and picks the only key when no kid is given', async () => {
    const keys = clientKeyRepository(createMemoryStore({ prefix: 'test:idp:' }));
    expect(await keys.register('u1', 'a', ecKey('a'))).toBe(true);
    expect(await keys.find('u1', undefined)).toEqual({ jwk: { ...ecKey('a'), kid: 'a' }, alg: 'ES256' });
    expect(await keys.register('u1', 'a', ecKey('b'))).toBe(false);
    expect((await keys.find('u1', 'a'))?.jwk.x).toBe(x('b'));
    expect(await keys.register('u1', 'b', edKey('c'))).toBe(true);
    expect(await keys.find('u1', 'b')).toMatchObject({ alg: 'EdDSA' });
    // Two keys and no kid: which one the client meant is not ours to guess.
    expect(await keys.find('u1', undefined)).toBeUndefined();
    expect(await keys.find('u2', 'a')).toBeUndefined();
  });

  it(`holds at most ${MAX_KEYS_PER_CLIENT} keys per client, also under concurrent registrations`, async () => {
    const keys = clientKeyRepository(createMemoryStore({ prefix: 'test:idp:' }));
    const results = await Promise.allSettled(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((kid) => keys.register('u1', kid, edKey(kid))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(MAX_KEYS_PER_CLIENT);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(Conflict);
    expect(await keys.register('u1', 'a', edKey('z'))).toBe(false);
  });

  it('removes a key once', async () => {
    const keys = clientKeyRepository(createMemoryStore({ prefix: 'test:idp:' }));
    await keys.register('u1', 'a', ecKey('a'));
    expect(await keys.remove('u1', 'a')).toBe(true);
    expect(await keys.remove('u1', 'a')).toBe(false);
    expect(await keys.find('u1', undefined)).toBeUndefined();
  });

  it('accepts a jti once and remembers it until the assertion has expired (RFC 7523 §3 item 7)', async () => {
    const store = createMemoryStore({ prefix: 'test:idp:' });
    const now = new Date('2030-01-01T00:00:00Z');
    const keys = clientKeyRepository(store, () => now);
    const expiresAt = now.getTime() / 1000 + 90;
    expect(await keys.claimJti('u1', 'j1', expiresAt)).toBe(true);
    expect(await keys.claimJti('u1', 'j1', expiresAt)).toBe(false);
    expect(await keys.claimJti('u2', 'j1', expiresAt)).toBe(true);
    expect(await store.ttl('assertion-jti:u1:j1')).toBeGreaterThan(80_000);
    expect(await store.ttl('assertion-jti:u1:j1')).toBeLessThanOrEqual(90_000);
  });

  it('knows which kid a subject registered a public key under, whatever its alg and kid say, and no other subject’s', async () => {
    const keys = clientKeyRepository(createMemoryStore({ prefix: 'test:idp:' }));
    await keys.register('u1', 'ed', edKey('a'));
    await keys.register('u1', 'es', ecKey('b'));
    expect(await keys.holding('u1', edKey('a'))).toBe('ed');
    expect(await keys.holding('u1', { ...ecKey('b'), kid: 'other' })).toBe('es');
    expect(await keys.holding('u1', edKey('b'))).toBeUndefined();
    expect(await keys.holding('u2', edKey('a'))).toBeUndefined();
    // one key under two kids: the first kid, every time
    await keys.register('u1', 'a-copy', edKey('a'));
    expect(await keys.holding('u1', edKey('a'))).toBe('a-copy');
    await keys.removeAll('u1');
    expect(await keys.holding('u1', edKey('a'))).toBeUndefined();
  });
});

describe('samePublicKey', () => {
  it('is the same type, curve and coordinates; alg and kid do not matter', () => {
    expect(samePublicKey(edKey('a'), { ...edKey('a'), kid: 'x' })).toBe(true);
    expect(samePublicKey(ecKey('a'), ecKey('a'))).toBe(true);
    expect(samePublicKey(edKey('a'), edKey('b'))).toBe(false);
    expect(samePublicKey(ecKey('a'), { ...ecKey('a'), y: x('b') })).toBe(false);
    expect(samePublicKey(ecKey('a'), { ...ecKey('b'), y: x('a') })).toBe(false);
    // the same x on another curve is another key
    expect(samePublicKey(edKey('a'), ecKey('a'))).toBe(false);
  });

  it('compares the bytes a coordinate encodes: a spelling with the two spare bits set is the same key', () => {
    const bytes = Buffer.alloc(32, 7);
    const canonical = bytes.toString('base64url');
    // 32 bytes are 256 bits in 43 characters of 6: the last character's low two bits are padding
    const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const spare = canonical.slice(0, 42) + last[last.indexOf(canonical[42]!) | 3];
    expect(spare).not.toBe(canonical);
    expect(Buffer.from(spare, 'base64url').equals(bytes)).toBe(true);
    expect(samePublicKey({ ...edKey('a'), x: canonical }, { ...edKey('a'), x: spare })).toBe(true);
  });
});
