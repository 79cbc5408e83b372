import { describe, expect, it } from 'vitest';
import { createMemoryStore, type Store } from '@keyway/store';
import type { AccessClaims } from '@keyway/tokens';
import type { Tokens } from './authorization-server.ts';
import { sessionStore } from './sessions.ts';

const claims = (jti: string) =>
  ({ iss: 'https://pas', sub: 'u-1', aud: 'https://pac', jti, iat: 1, nbf: 1, exp: 2, tid: 't-1', roles: ['downloader'], scope: 'releases', client_id: 'c' }) as AccessClaims;
const tokens = (n: number, refreshExpiresIn = 1000): Tokens => ({
  accessToken: `eyJhbGciOiJFUzI1NiJ9.access-${n}.sig`,
  refreshToken: `eyJhbGciOiJFUzI1NiJ9.refresh-${n}.sig`,
  accessExp: 2_000_000_000,
  refreshExpiresIn,
  claims: claims(`jti-${n}`),
});

/** a store and a clock the test moves */
function rig(lifetimes: { idleTtlSec: number; absoluteTtlSec?: number }) {
  const store = createMemoryStore({ prefix: 'test:' });
  const clock = { now: 1_700_000_000_000 };
  return { store, clock, sessions: sessionStore(store, { ...lifetimes, now: () => clock.now }) };
}

const dump = async (store: Store): Promise<string> => (await Promise.all((await store.keys('')).map(async (key) => `${key}=${await store.get(key)}`))).join('\n');

describe('sessions in the store', () => {
  it('are kept under the id’s hash with the tokens sealed: a copy of the store opens nothing', async () => {
    const { store, sessions } = rig({ idleTtlSec: 3600 });
    const session = await sessions.create(tokens(1));
    const held = await dump(store);
    for (const secret of [session.id, 'refresh-1', 'access-1']) expect(held).not.toContain(secret);
    expect(held).toContain('"sub":"u-1"');

    expect((await sessions.load(session.id))?.tokens).toMatchObject({ accessToken: tokens(1).accessToken, refreshToken: tokens(1).refreshToken, claims: { jti: 'jti-1' } });
    const other = await sessions.create(tokens(2));
    expect(await sessions.load(`${session.id.slice(0, -1)}${session.id.endsWith('A') ? 'B' : 'A'}`)).toBeUndefined();
    expect(await sessions.load('not-a-session-id')).toBeUndefined();
    // one session's sealed tokens moved under another's key do not open (the key is their associated data)
    const [mine, theirs] = [await store.get(session.key), await store.get(other.key)];
    await store.set(other.key, JSON.stringify({ ...JSON.parse(theirs as string), sealed: JSON.parse(mine as string).sealed }));
    expect(await sessions.load(other.id)).toBeUndefined();
  });

  it('end when idle, the idle expiry sliding with use, and at the absolute lifetime whatever the use', async () => {
    const { clock, sessions } = rig({ idleTtlSec: 100, absoluteTtlSec: 250 });
    const session = await sessions.create(tokens(1));
    clock.now += 90_000;
    const used = await sessions.load(session.id);
    expect(used).toBeDefined();
    await sessions.touch(used as NonNullable<typeof used>);
    clock.now += 90_000; // 180 s: idle 90 s since the last use
    const again = await sessions.load(session.id);
    expect(again).toBeDefined();
    await sessions.touch(again as NonNullable<typeof again>);
    clock.now += 71_000; // 251 s: used 71 s ago, but past the absolute lifetime
    expect(await sessions.load(session.id)).toBeUndefined();

    const idle = await sessions.create(tokens(2));
    clock.now += 101_000;
    expect(await sessions.load(idle.id)).toBeUndefined();
  });

  it('last at most the refresh token’s lifetime when no absolute lifetime is set', async () => {
    const { clock, sessions } = rig({ idleTtlSec: 100 });
    const session = await sessions.create(tokens(1, 150));
    for (let at = 0; at < 140; at += 70) {
      clock.now += 70_000;
      const used = await sessions.load(session.id);
      expect(used).toBeDefined();
      await sessions.touch(used as NonNullable<typeof used>);
    }
    clock.now += 11_000;
    expect(await sessions.load(session.id)).toBeUndefined();
  });

  it('keep a rotated refresh token even when another request slid the idle expiry meanwhile', async () => {
    const { clock, sessions } = rig({ idleTtlSec: 100 });
    const session = await sessions.create(tokens(1));
    clock.now += 60_000;
    const read = await sessions.load(session.id);
    await sessions.touch(read as NonNullable<typeof read>);
    // `session` is stale now: its compare-and-set fails, and the replacement reads again
    const replaced = await sessions.replaceTokens(session, tokens(2));
    expect(replaced?.tokens.refreshToken).toBe(tokens(2).refreshToken);
    expect((await sessions.load(session.id))?.tokens.refreshToken).toBe(tokens(2).refreshToken);
  });

  it('are refreshed under a lock one holder at a time, released only by its holder', async () => {
    const { sessions } = rig({ idleTtlSec: 100 });
    const session = await sessions.create(tokens(1));
    const first = await sessions.lock(session, 50);
    expect(first).toBeDefined();
    expect(await sessions.lock(session, 50)).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 80));
    // the first lock expired: another takes it, and the first holder's late release leaves it alone
    const second = await sessions.lock(session, 5_000);
    expect(second).toBeDefined();
    await first?.();
    expect(await sessions.lock(session, 5_000)).toBeUndefined();
    await second?.();
    expect(await sessions.lock(session, 5_000)).toBeDefined();
  });
});
