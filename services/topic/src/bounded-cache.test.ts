import { describe, expect, it } from 'vitest';
import { forgetOnFailure, setBounded } from './bounded-cache.ts';

describe('bounded caches', () => {
  it('setBounded keeps the newest writes up to max, a rewrite counting as new', () => {
    const cache = new Map<string, number>();
    setBounded(cache, 'a', 1, 2);
    setBounded(cache, 'b', 2, 2);
    setBounded(cache, 'a', 3, 2);
    setBounded(cache, 'c', 4, 2);
    expect([...cache]).toEqual([
      ['a', 3],
      ['c', 4],
    ]);
  });

  it('forgetOnFailure drops a failed entry, but not one that replaced it meanwhile', async () => {
    const cache = new Map<string, { pending: Promise<number> }>();
    const failing = { pending: Promise.reject(new Error('PAC did not answer')) };
    setBounded(cache, 'a', failing, 10);
    forgetOnFailure(cache, 'a', failing, failing.pending);
    const replaced = { pending: Promise.reject(new Error('PAC did not answer')) };
    const newer = { pending: Promise.resolve(1) };
    setBounded(cache, 'b', replaced, 10);
    forgetOnFailure(cache, 'b', replaced, replaced.pending);
    setBounded(cache, 'b', newer, 10);
    await Promise.allSettled([failing.pending, replaced.pending]);
    await new Promise((r) => setImmediate(r));
    expect([...cache.keys()]).toEqual(['b']);
    expect(cache.get('b')).toBe(newer);
  });
});
