import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStore, type Store } from '@keyway/store';
import { connectTestDatabase, REDIS_URL, type TestDatabaseConnections } from '@keyway/testkit';
import { CHALLENGE_TTL_MS, challengeOf, ENROLMENT_WINDOW_MS, enrolmentWindows, MAX_PASSKEYS_PER_USER, passkeyChallenges, passkeyRepository, userHandle } from './passkeys.ts';

// The IdP's passkeys on real PostgreSQL (0005_passkeys.sql, as the IdP's own role) and its
// challenges on real Redis.

let database: TestDatabaseConnections;
let store: Store;

beforeAll(async () => {
  database = await connectTestDatabase();
  store = await createStore({ redisUrl: REDIS_URL, prefix: `keyway-test:${randomUUID()}:idp:` });
});
afterAll(async () => {
  const keys = (await store?.keys('')) ?? [];
  if (keys.length > 0) await store.del(...keys);
  await store?.close();
  await database?.close();
});

const credentialId = () => randomBytes(32).toString('base64url');
const publicKey = () => new Uint8Array(randomBytes(77));

describe('passkey repository (keyway_idp.passkeys)', () => {
  it('stores public keys by credential id and lists them by person; an id is registered once', async () => {
    const passkeys = passkeyRepository(database.as('idp'));
    const sub = `u-${randomUUID()}`;
    const id = credentialId();
    const key = publicKey();
    expect(await passkeys.add({ credentialId: id, sub, publicKey: key, signCount: 0, transports: ['internal', 'hybrid'] })).toBe(true);
    // the same credential again, even for someone else: refused (an id names one credential)
    expect(await passkeys.add({ credentialId: id, sub: `u-${randomUUID()}`, publicKey: publicKey(), signCount: 0, transports: [] })).toBe(false);
    const found = await passkeys.find(id);
    expect(found).toMatchObject({ credentialId: id, sub, signCount: 0, transports: ['internal', 'hybrid'], lastUsedAt: undefined });
    expect(Buffer.from(found?.publicKey ?? []).equals(Buffer.from(key))).toBe(true);
    expect((await passkeys.listBySub(sub)).map((p) => p.credentialId)).toEqual([id]);
    expect(await passkeys.find(credentialId())).toBeUndefined();
  });

  it(`holds at most ${MAX_PASSKEYS_PER_USER} passkeys per person`, async () => {
    const passkeys = passkeyRepository(database.as('idp'));
    const sub = `u-${randomUUID()}`;
    for (let i = 0; i < MAX_PASSKEYS_PER_USER; i += 1) expect(await passkeys.add({ credentialId: credentialId(), sub, publicKey: publicKey(), signCount: 0, transports: [] })).toBe(true);
    expect(await passkeys.add({ credentialId: credentialId(), sub, publicKey: publicKey(), signCount: 0, transports: [] })).toBe(false);
  });

  it('moves the sign count only from the value a verification started from (two racing sign-ins: one wins)', async () => {
    const passkeys = passkeyRepository(database.as('idp'));
    const id = credentialId();
    await passkeys.add({ credentialId: id, sub: `u-${randomUUID()}`, publicKey: publicKey(), signCount: 3, transports: [] });
    const results = await Promise.all([passkeys.used(id, 3, 4), passkeys.used(id, 3, 4)]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await passkeys.used(id, 3, 5)).toBe(false);
    expect(await passkeys.find(id)).toMatchObject({ signCount: 4, lastUsedAt: expect.any(Date) });
  });

  it('removes every passkey of a person whose credentials are removed', async () => {
    const passkeys = passkeyRepository(database.as('idp'));
    const sub = `u-${randomUUID()}`;
    await passkeys.add({ credentialId: credentialId(), sub, publicKey: publicKey(), signCount: 0, transports: [] });
    await passkeys.add({ credentialId: credentialId(), sub, publicKey: publicKey(), signCount: 0, transports: [] });
    expect(await passkeys.removeAll(sub)).toBe(2);
    expect(await passkeys.listBySub(sub)).toEqual([]);
  });

  it('is the IdP’s alone: another service’s role can neither read nor write it', async () => {
    for (const service of ['pas', 'entitlement', 'audit']) {
      await expect(passkeyRepository(database.as(service)).find(credentialId())).rejects.toThrow(/permission denied/);
      await expect(passkeyRepository(database.as(service)).add({ credentialId: credentialId(), sub: 'x', publicKey: publicKey(), signCount: 0, transports: [] })).rejects.toThrow(/permission denied/);
    }
  });
});

describe('passkey challenges (the IdP’s Redis)', () => {
  it('are random, taken once, for the ceremony they were issued for, and expire', async () => {
    const challenges = passkeyChallenges(store);
    const a = await challenges.issue({ kind: 'registration', sub: 'u1' });
    const b = await challenges.issue({ kind: 'authentication' });
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(await challenges.take(a)).toEqual({ kind: 'registration', sub: 'u1' });
    expect(await challenges.take(a)).toBeUndefined();
    expect(await challenges.take(b)).toEqual({ kind: 'authentication' });
    expect(await challenges.take('never-issued')).toBeUndefined();
    // kept under its hash: the store holds nothing a response could be made with
    const c = await challenges.issue({ kind: 'authentication' });
    const keys = await store.keys('webauthn-challenge:');
    expect(keys.some((k) => k.includes(c))).toBe(false);
    const ttls = await Promise.all(keys.map((k) => store.ttl(k)));
    for (const ttl of ttls) expect(ttl).toBeGreaterThan(CHALLENGE_TTL_MS - 5000);
  });

  it('reads the challenge of a response from its clientDataJSON, and nothing from garbage', () => {
    const clientData = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge: 'abc', origin: 'https://localhost' })).toString('base64url');
    expect(challengeOf(clientData)).toBe('abc');
    expect(challengeOf('not-json')).toBeUndefined();
    expect(challengeOf(Buffer.from('{"challenge":1}').toString('base64url'))).toBeUndefined();
  });

  it('opens the enrolment window of a person for ENROLMENT_WINDOW_MS, and only theirs', async () => {
    const windows = enrolmentWindows(store);
    expect(await windows.isOpen('u1')).toBe(false);
    await windows.open('u1');
    expect(await windows.isOpen('u1')).toBe(true);
    expect(await windows.isOpen('u2')).toBe(false);
    expect(await store.ttl('passkey-enrolment-window:u1')).toBeGreaterThan(ENROLMENT_WINDOW_MS - 5000);
  });

  it('derives an opaque 32-byte user handle per person', () => {
    expect(userHandle('u1')).toHaveLength(32);
    expect(Buffer.from(userHandle('u1')).equals(Buffer.from(userHandle('u1')))).toBe(true);
    expect(Buffer.from(userHandle('u1')).equals(Buffer.from(userHandle('u2')))).toBe(false);
  });
});
