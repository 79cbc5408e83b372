import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '@keyway/store';
import { refreshFamilies, type FamilyInfo } from './refresh-family.ts';

const family: FamilyInfo = { fid: 'f-1', sub: 'u-1', tid: 't-1', scope: 'feed:edr-events' };

describe('refresh family revocation is announced before it is made', () => {
  it('announces a live family once, with its reason; an announcement that fails leaves the family live (the caller retries)', async () => {
    const announced: Array<[string, string]> = [];
    let failing = true;
    const families = refreshFamilies(createMemoryStore({ prefix: 'pas:' }), async (info, reason) => {
      if (failing) throw new Error('outbox unavailable');
      announced.push([info.fid, reason]);
    });
    await families.start(family, 'j-1', 60_000);
    await expect(families.revoke('f-1', 'client_revocation')).rejects.toThrow('outbox unavailable');
    expect(await families.current('f-1')).toBe('j-1');

    failing = false;
    expect(await families.revoke('f-1', 'client_revocation')).toBe(true);
    expect(await families.current('f-1')).toBeNull();
    expect(await families.revoke('f-1', 'client_revocation')).toBe(false);
    expect(announced).toEqual([['f-1', 'client_revocation']]);
  });

  it('does not announce what PAC follows itself (an entitlement change)', async () => {
    const announced: string[] = [];
    const families = refreshFamilies(createMemoryStore({ prefix: 'pas:' }), async (info) => void announced.push(info.fid));
    await families.start(family, 'j-1', 60_000);
    expect(await families.revoke('f-1', 'user.removed', { announce: false })).toBe(true);
    expect(announced).toEqual([]);
  });
});

describe('refresh family rotation', () => {
  it('exactly one of two refreshes of one token rotates; the spent token is marked, and the family lives on for the new lifetime', async () => {
    const store = createMemoryStore({ prefix: 'pas:' });
    const families = refreshFamilies(store);
    await families.start(family, 'j-1', 1_000);
    const outcomes = await Promise.all([families.rotate('f-1', 'j-1', 'j-2a', 60_000, 2_000), families.rotate('f-1', 'j-1', 'j-2b', 60_000, 2_000)]);
    expect(outcomes.filter(Boolean)).toHaveLength(1);
    expect(await families.current('f-1')).toBe(outcomes[0] ? 'j-2a' : 'j-2b');
    expect(await families.spentRecently('f-1', 'j-1')).toBe(true);
    expect(await families.info('f-1')).toEqual(family);
    expect(await store.ttl('family-info:f-1')).toBeGreaterThan(1_000);
    expect(await families.rotate('f-1', 'j-1', 'j-3', 60_000, 2_000)).toBe(false);
  });
});

describe('refresh families by DPoP key (RFC 9449)', () => {
  it('indexes a bound family by its key from its start, and a bearer family from the rotation that binds it; a bound family keeps its key', async () => {
    const families = refreshFamilies(createMemoryStore({ prefix: 'pas:' }));
    await families.start({ ...family, jkt: 'k-1' }, 'j-1', 60_000);
    await families.start({ ...family, fid: 'f-2' }, 'j-1', 60_000);
    expect((await families.ofDpopKey('k-1')).map((f) => f.fid)).toEqual(['f-1']);

    expect(await families.rotate('f-2', 'j-1', 'j-2', 60_000, 0, 'k-1')).toBe(true);
    expect((await families.ofDpopKey('k-1')).map((f) => f.fid).sort()).toEqual(['f-1', 'f-2']);
    expect(await families.rotate('f-1', 'j-1', 'j-2', 60_000, 0, 'k-other')).toBe(true);
    expect((await families.info('f-1'))?.jkt).toBe('k-1');
    expect(await families.ofDpopKey('k-other')).toEqual([]);

    await families.revoke('f-1');
    expect((await families.ofDpopKey('k-1')).map((f) => f.fid)).toEqual(['f-2']);
  });
});
