import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '@keyway/store';
import { issuedRegistry, type IssuedSasKey } from './registry.ts';

const key = (keyId: string, fid: string): IssuedSasKey => ({ keyId, tenant: 't-1', topic: 'edr-events', rights: 'send', sub: 'u-1', fid, expiresAt: Math.floor(Date.now() / 1000) + 3600 });

describe('issued SAS keys: revocation by refresh family', () => {
  it('revokes every key of the family, and only that family', async () => {
    const issued = issuedRegistry(createMemoryStore({ prefix: 'test:' }));
    await issued.record(key('k-a1', 'f-a'));
    await issued.record(key('k-a2', 'f-a'));
    await issued.record(key('k-b1', 'f-b'));
    const revoked = await issued.revoke({ tenant: 't-1', fid: 'f-a' });
    expect(revoked.map((k) => k.keyId).sort()).toEqual(['k-a1', 'k-a2']);
    expect(await issued.isRevoked('k-a1')).toBe(true);
    expect(await issued.isRevoked('k-b1')).toBe(false);
  });

  it('a key recorded after its family was revoked (minted from a token introspected just before) is revoked as it is recorded', async () => {
    const issued = issuedRegistry(createMemoryStore({ prefix: 'test:' }));
    await issued.revoke({ tenant: 't-1', fid: 'f-a' });
    expect(await issued.isFamilyRevoked('f-a')).toBe(true);
    expect(await issued.record(key('k-late', 'f-a'))).toBe(false);
    expect(await issued.isRevoked('k-late')).toBe(true);
    expect(await issued.record(key('k-other', 'f-b'))).toBe(true);
  });

  it('issue 11: a key check finds the key by its id (its holder, tenant, feed, rights), and revoking it once is final', async () => {
    const issued = issuedRegistry(createMemoryStore({ prefix: 'test:' }));
    const k1 = key('k-1', 'f-a');
    await issued.record(k1);
    expect(await issued.find('k-1')).toEqual(k1);
    expect(await issued.find('k-unknown')).toBeUndefined();
    expect(await issued.revokeKey(k1)).toBe(true);
    expect(await issued.revokeKey(k1)).toBe(false);
    expect(await issued.isRevoked('k-1')).toBe(true);
  });

  it('issue() gives a key to one holder only: the same holder may get it again, another is told to mint another; a revoked family gets none', async () => {
    const issued = issuedRegistry(createMemoryStore({ prefix: 'test:' }));
    const mine = key('k-same-second', 'f-a');
    expect(await issued.issue(mine)).toBe('issued');
    expect(await issued.find('k-same-second')).toEqual(mine);
    expect(await issued.issue({ ...mine, fid: 'f-b' })).toBe('issued');
    expect(await issued.issue({ ...mine, sub: 'u-2', fid: 'f-c' })).toBe('taken');
    expect((await issued.find('k-same-second'))?.sub).toBe('u-1');
    // both of u-1's families hold the key, so revoking either revokes it
    expect((await issued.revoke({ tenant: 't-1', fid: 'f-b' })).map((k) => k.keyId)).toEqual(['k-same-second']);
    expect(await issued.issue(key('k-after-revocation', 'f-b'))).toBe('revoked');
    expect(await issued.isRevoked('k-after-revocation')).toBe(true);
  });
});
