import { describe, expect, it } from 'vitest';
import { VersionName, VersionRange } from './common.ts';
import { PutTier, UpdateUser } from './entitlement.ts';
import { intersectReleaseRights, mayOnRelease, releaseRightsOf, ROLES, tokenReleaseRights, type ReleaseRights } from './roles.ts';

const tier = [
  { product: 'edr-agent', versions: '>=1.0.0' },
  { product: 'dns-probe', versions: '^2.0.0' },
];

describe('releaseRightsOf', () => {
  it('gives a downloader download on the tier’s products, within each one’s range, and nothing of the user’s own products', () => {
    expect(releaseRightsOf(['downloader'], ['sensor'], tier)).toEqual({
      'edr-agent': { rights: ['download'], versions: '>=1.0.0' },
      'dns-probe': { rights: ['download'], versions: '^2.0.0' },
    });
    expect(releaseRightsOf(['downloader'], [], [])).toEqual({});
  });

  it('gives uploaders and publishers their rights on the user’s own products only (per role and per product)', () => {
    expect(releaseRightsOf(['uploader'], ['sensor'], tier)).toEqual({ sensor: { rights: ['upload'], versions: '*' } });
    expect(releaseRightsOf(['publisher'], ['sensor'], tier)).toEqual({ sensor: { rights: ['download', 'upload', 'publish', 'withdraw'], versions: '*' } });
    expect(releaseRightsOf(['uploader'], [], tier)).toEqual({});
    // a downloader who also publishes one of the tier's products downloads every version of it
    expect(releaseRightsOf(['downloader', 'uploader', 'publisher'], ['edr-agent'], tier)).toEqual({
      'edr-agent': { rights: ['download', 'upload', 'publish', 'withdraw'], versions: '*' },
      'dns-probe': { rights: ['download'], versions: '^2.0.0' },
    });
  });

  it('grants nothing on releases for feed roles, the operator and unknown names', () => {
    for (const role of ['full-control', 'read-only', 'producer', 'operator', 'root']) expect(releaseRightsOf([role], ['sensor'], tier)).toEqual({});
  });

  it('reads the role table: what a role grants on releases is ROLES alone', () => {
    const table = ROLES as Record<string, { releases: string[] }>;
    const saved = table.uploader!.releases;
    try {
      table.uploader!.releases = ['upload', 'withdraw'];
      expect(releaseRightsOf(['uploader'], ['sensor'], [])).toEqual({ sensor: { rights: ['upload', 'withdraw'], versions: '*' } });
    } finally {
      table.uploader!.releases = saved;
    }
  });
});

describe('mayOnRelease', () => {
  const rights: ReleaseRights = {
    'edr-agent': { rights: ['download'], versions: '>=1.0.0 <3.0.0' },
    sensor: { rights: ['download', 'upload', 'publish', 'withdraw'], versions: '*' },
  };

  it('allows a right held on the product, and download only within the range', () => {
    expect(mayOnRelease(rights, 'edr-agent', 'download', '1.0.0')).toBe(true);
    expect(mayOnRelease(rights, 'edr-agent', 'download', '2.9.9')).toBe(true);
    expect(mayOnRelease(rights, 'edr-agent', 'download', '3.0.0')).toBe(false);
    expect(mayOnRelease(rights, 'edr-agent', 'download', '0.9.0')).toBe(false);
    expect(mayOnRelease(rights, 'edr-agent', 'download')).toBe(true);
    // a published pre-release is in the range its numbers are in, and in "*"
    expect(mayOnRelease(rights, 'edr-agent', 'download', '2.0.0-rc.1')).toBe(true);
    expect(mayOnRelease(rights, 'sensor', 'download', '9.0.0-beta.2')).toBe(true);
  });

  it('refuses a right not held, a product not held and a version that is not strict semver', () => {
    expect(mayOnRelease(rights, 'edr-agent', 'upload')).toBe(false);
    expect(mayOnRelease(rights, 'edr-agent', 'publish', '1.0.0')).toBe(false);
    expect(mayOnRelease(rights, 'dns-probe', 'download', '1.0.0')).toBe(false);
    expect(mayOnRelease(rights, 'toString', 'download')).toBe(false);
    for (const version of ['v1.0.0', '1.0', ' 1.0.0', '1.0.0 ', '>=1.0.0', '1.x', '']) expect(mayOnRelease(rights, 'edr-agent', 'download', version)).toBe(false);
    expect(mayOnRelease(rights, 'sensor', 'publish', '1.0.0')).toBe(true);
    expect(mayOnRelease(rights, 'sensor', 'publish', 'latest')).toBe(false);
  });
});

describe('intersectReleaseRights (a refresh never widens)', () => {
  it('keeps the products and rights both grant, and the versions both allow', () => {
    const token: ReleaseRights = { a: { rights: ['download'], versions: '>=1.0.0' }, b: { rights: ['download', 'upload'], versions: '*' } };
    expect(intersectReleaseRights(token, { b: { rights: ['upload'], versions: '*' }, c: { rights: ['download'], versions: '*' } })).toEqual({ b: { rights: ['upload'], versions: '*' } });
    expect(intersectReleaseRights(token, {})).toEqual({});
    const narrowed = intersectReleaseRights(token, { a: { rights: ['download'], versions: '<2.0.0 || >=3.0.0' } });
    expect(narrowed.a?.versions).toBe('>=1.0.0 <2.0.0 || >=1.0.0 >=3.0.0');
    expect(mayOnRelease(narrowed, 'a', 'download', '1.5.0')).toBe(true);
    expect(mayOnRelease(narrowed, 'a', 'download', '2.5.0')).toBe(false);
    expect(mayOnRelease(narrowed, 'a', 'download', '0.5.0')).toBe(false);
    expect(mayOnRelease(narrowed, 'a', 'download', '3.1.0')).toBe(true);
  });

  it('reads a malformed releases claim as no rights', () => {
    expect(tokenReleaseRights({})).toEqual({});
    expect(tokenReleaseRights({ releases: { a: { rights: ['own'], versions: '*' } } })).toEqual({});
    expect(tokenReleaseRights({ releases: { a: { rights: ['download'], versions: 'not a range' } } })).toEqual({});
    expect(tokenReleaseRights({ releases: { a: { rights: ['download'], versions: '^1.2.0' } } })).toEqual({ a: { rights: ['download'], versions: '^1.2.0' } });
  });
});

describe('release schemas', () => {
  it('accepts strict semver versions only', () => {
    for (const ok of ['1.0.0', '2.10.3-rc.1']) expect(VersionName.safeParse(ok).success).toBe(true);
    for (const bad of ['v1.0.0', '1.0', '01.0.0', '1.0.0 ', '1.0.0+build.5', `1.0.0-${'a'.repeat(60)}`]) expect(VersionName.safeParse(bad).success).toBe(false);
  });

  it('accepts semver ranges, "*" by default', () => {
    expect(VersionRange.parse(undefined)).toBe('*');
    for (const ok of ['>=1.0.0', '^2.1.0', '1.x || >=3.0.0 <4.0.0']) expect(VersionRange.safeParse(ok).success).toBe(true);
    for (const bad of ['latest', '>=>1', 'x'.repeat(201)]) expect(VersionRange.safeParse(bad).success).toBe(false);
  });

  it('lists a tier’s products and a user’s products once each', () => {
    expect(PutTier.parse({ name: 'Gold', feeds: [] }).products).toEqual([]);
    expect(PutTier.parse({ name: 'Gold', feeds: [], products: [{ product: 'edr-agent' }] }).products).toEqual([{ product: 'edr-agent', versions: '*' }]);
    expect(PutTier.safeParse({ name: 'Gold', feeds: [], products: [{ product: 'a' }, { product: 'a', versions: '>=1.0.0' }] }).success).toBe(false);
    expect(PutTier.safeParse({ name: 'Gold', feeds: [], products: [{ product: 'Not A Slug' }] }).success).toBe(false);
    expect(UpdateUser.safeParse({ products: ['a', 'a'] }).success).toBe(false);
    expect(UpdateUser.parse({ products: [] })).toEqual({ products: [] });
    expect(UpdateUser.safeParse({ products: Array.from({ length: 101 }, (_, i) => `p${i}`) }).success).toBe(false);
  });
});
