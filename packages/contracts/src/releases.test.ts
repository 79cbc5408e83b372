import { describe, expect, it } from 'vitest';
import { FileName, mayOnRelease, type ReleaseRights, VersionName } from './releases.ts';

const rights: ReleaseRights = {
  edr: { rights: ['download'], versions: '^2.0.0' },
  agent: { rights: ['upload', 'publish', 'withdraw', 'download'], versions: '>=1.2.0-0' },
  broken: { rights: ['download'], versions: 'not a range' },
};

describe('mayOnRelease: rights per product, download bounded by the contract’s semver range', () => {
  it('allows only the rights held on that product', () => {
    expect(mayOnRelease(rights, 'edr', 'download')).toBe(true);
    expect(mayOnRelease(rights, 'edr', 'upload')).toBe(false);
    expect(mayOnRelease(rights, 'agent', 'publish')).toBe(true);
    expect(mayOnRelease(rights, 'other', 'download')).toBe(false);
    // inherited names are no products
    expect(mayOnRelease(rights, 'constructor', 'download')).toBe(false);
    expect(mayOnRelease(rights, '__proto__', 'download')).toBe(false);
  });

  it('bounds download by the range: inside, outside, published prereleases by their numbers, a malformed range or version allows nothing', () => {
    expect(mayOnRelease(rights, 'edr', 'download', '2.4.1')).toBe(true);
    expect(mayOnRelease(rights, 'edr', 'download', '3.0.0')).toBe(false);
    expect(mayOnRelease(rights, 'edr', 'download', '1.9.9')).toBe(false);
    // a published prerelease is the vendor's decision to release it: inside the range by its numbers
    expect(mayOnRelease(rights, 'edr', 'download', '2.5.0-rc.1')).toBe(true);
    expect(mayOnRelease(rights, 'edr', 'download', '3.0.0-rc.1')).toBe(false);
    expect(mayOnRelease(rights, 'edr', 'download', 'v2.4.1')).toBe(false);
    expect(mayOnRelease(rights, 'agent', 'download', '1.2.0-rc.1')).toBe(true);
    expect(mayOnRelease(rights, 'agent', 'download', '1.1.9')).toBe(false);
    expect(mayOnRelease(rights, 'broken', 'download', '1.0.0')).toBe(false);
    // the range bounds download only
    expect(mayOnRelease(rights, 'agent', 'publish', '0.1.0')).toBe(true);
  });
});

describe('names that end up in links and on disk', () => {
  it.each(['2.4.1', '3.0.0-rc.1'])('version %s is a semantic version', (v) => expect(VersionName.safeParse(v).success).toBe(true));
  // build metadata does not order versions (semver §10): 1.0.0+a and 1.0.0+b would be one version to a range
  it.each(['v2.4.1', '2.4', 'latest', ' 2.4.1', '=2.4.1', '1.0.0+build.5'])('version %j is refused', (v) => expect(VersionName.safeParse(v).success).toBe(false));
  it.each(['../etc', '.hidden', 'a/b', 'a b', 'é.bin', ''])('file name %j is refused', (name) => expect(FileName.safeParse(name).success).toBe(false));
});
