import { describe, expect, it } from 'vitest';
import { keyStatusCache } from './revocation.ts';

describe('revocation cache', () => {
  it('asks PAC once for concurrent checks of one key, again once the answer expires, and again after a failed call', async () => {
    let clock = 0;
    const asked: string[] = [];
    let fail = false;
    const isRevoked = (keyId: string) => status(keyId).then((s) => s.revoked);
    const status = keyStatusCache(
      async (keyId) => {
        asked.push(keyId);
        await new Promise((r) => setTimeout(r, 5));
        if (fail) throw new Error('PAC did not answer');
        return { revoked: false };
      },
      { ttlMs: 2000, now: () => clock },
    );
    expect(await Promise.all(Array.from({ length: 100 }, () => isRevoked('k1')))).toEqual(Array(100).fill(false));
    expect(asked).toEqual(['k1']);
    clock = 1999;
    await isRevoked('k1');
    expect(asked).toHaveLength(1);
    clock = 2000;
    fail = true;
    const failed = await Promise.allSettled([isRevoked('k1'), isRevoked('k1')]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(asked).toHaveLength(2);
    fail = false;
    expect(await isRevoked('k1')).toBe(false);
    expect(asked).toHaveLength(3);
  });

  it('keeps "revoked" for good', async () => {
    let clock = 0;
    let calls = 0;
    const isRevoked = (keyId: string) => status(keyId).then((s) => s.revoked);
    const status = keyStatusCache(
      async () => {
        calls += 1;
        return { revoked: true, jkt: 'j-1' };
      },
      { ttlMs: 10, now: () => clock },
    );
    expect(await isRevoked('k')).toBe(true);
    clock = 1_000_000;
    expect(await isRevoked('k')).toBe(true);
    expect(await status('k')).toEqual({ revoked: true, jkt: 'j-1' });
    expect(calls).toBe(1);
  });
});
