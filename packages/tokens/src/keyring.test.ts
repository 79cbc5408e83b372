import { describe, expect, it } from 'vitest';
import { KeyRing } from './index.ts';

const kids = (ring: KeyRing, now: number) => ring.jwks(now).keys.map((k) => k.kid);

describe('KeyRing: published before it signs, kept until its tokens expire (design.md, "Tokens and keys")', () => {
  it('a new ring already publishes the key its first rotation promotes', async () => {
    const ring = await KeyRing.generate(0);
    const next = ring.next();
    expect(next?.state).toBe('next');
    expect(kids(ring, 0)).toEqual([ring.active().kid, next!.kid]);
    await ring.rotate(1000, 10);
    expect(ring.active().kid).toBe(next!.kid);
  });

  it('publishNext gives a ring stored without a next key one, and is a no-op otherwise', async () => {
    const ring = await KeyRing.generate(0);
    const stored = JSON.parse(await ring.serialize()) as Array<{ state: string }>;
    const legacy = await KeyRing.deserialize(JSON.stringify(stored.filter((k) => k.state !== 'next')));
    expect(legacy.next()).toBeUndefined();
    expect(await legacy.publishNext(5)).toBe(true);
    expect(legacy.next()?.createdAt).toBe(5);
    expect(await legacy.publishNext(6)).toBe(false);
    expect(legacy.list()).toHaveLength(2);
  });

  it('a ring read back from the store can be rotated and stored again', async () => {
    const restored = await KeyRing.deserialize(await (await KeyRing.generate(0)).serialize());
    await restored.rotate(1000, 10);
    const again = await KeyRing.deserialize(await restored.serialize());
    expect(again.list().map((k) => [k.kid, k.state])).toEqual(restored.list().map((k) => [k.kid, k.state]));
  });

  it('two rotations keep both retiring keys published until each one’s retireAfter, then drop them', async () => {
    const ring = await KeyRing.generate(0);
    const first = ring.active().kid;
    await ring.rotate(1000, 100);
    const second = ring.active().kid;
    await ring.rotate(1000, 200);
    expect(kids(ring, 300)).toEqual(expect.arrayContaining([first, second, ring.active().kid, ring.next()!.kid]));
    expect(ring.list().find((k) => k.kid === first)).toMatchObject({ state: 'retiring', retireAfter: 1100 });
    expect(kids(ring, 1100)).not.toContain(first);
    expect(kids(ring, 1100)).toContain(second);
    await ring.rotate(1000, 1200);
    expect(ring.list().map((k) => k.kid)).not.toContain(first);
  });
});
