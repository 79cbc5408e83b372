import semver from 'semver';
import { z } from 'zod';
import { AUDIT_FEED } from './audit.ts';
import { FeedName, ProductId, Rights, Role, VersionRange } from './common.ts';

/** A right on a tenant feed (a SAS key's `listen` / `send`). */
export const FeedRight = z.enum(['listen', 'send']);
export type FeedRight = z.infer<typeof FeedRight>;
/** A right on a product of the releases service (SAS `listen` / `send` map to download / upload there). */
export const ReleaseRight = z.enum(['download', 'upload', 'publish', 'withdraw']);
export type ReleaseRight = z.infer<typeof ReleaseRight>;

export const RoleGrant = z.object({
  /** rights on each of the tenant's feeds */
  feeds: z.array(FeedRight),
  /** rights on releases, on the products `releaseProducts` names */
  releases: z.array(ReleaseRight),
  /**
   * which products the release rights apply to: the tenant's tier's (within each product's version
   * range) or the user's own product list (every version)
   */
  releaseProducts: z.enum(['tier', 'user']),
  /** the admin APIs of every service (PAS login with scope=operator; vendor tenant only) */
  admin: z.boolean(),
  description: z.string(),
});
export type RoleGrant = z.infer<typeof RoleGrant>;
const RoleTable = z.record(Role, RoleGrant);

/**
 * The one role table (design.md, "Roles"): what each role grants. The entitlement service decides
 * with it, PAS writes its answer into the tokens, PAC mints from the tokens, the admin API lists it.
 */
export const ROLES = RoleTable.parse({
  'full-control': { feeds: ['listen', 'send'], releases: [], releaseProducts: 'tier', admin: false, description: 'log in for the tenant’s feeds and hold SAS keys with listen and send' },
  'read-only': { feeds: ['listen'], releases: [], releaseProducts: 'tier', admin: false, description: 'log in for the tenant’s feeds and hold SAS keys with listen only' },
  producer: {
    feeds: ['send'],
    releases: [],
    releaseProducts: 'tier',
    admin: false,
    description: 'log in for the tenant’s feeds and hold SAS keys with send only (the vendor platform publishing batches)',
  },
  downloader: { feeds: [], releases: ['download'], releaseProducts: 'tier', admin: false, description: 'releases: download the products and versions of the tenant’s tier' },
  uploader: { feeds: [], releases: ['upload'], releaseProducts: 'user', admin: false, description: 'releases: upload to the upload location of each of the user’s products' },
  // a publisher checks what it publishes: it downloads any version of its products
  publisher: {
    feeds: [],
    releases: ['download', 'upload', 'publish', 'withdraw'],
    releaseProducts: 'user',
    admin: false,
    description: 'releases: upload, publish, withdraw (and download) versions of each of the user’s products',
  },
  operator: { feeds: [], releases: [], releaseProducts: 'tier', admin: true, description: 'use the admin APIs of every service (PAS login with scope=operator); only users of the vendor tenant' },
} satisfies Record<Role, RoleGrant>) as Record<Role, RoleGrant>;

/** The rights a token grants, feed by feed (the `rights` claim PAS writes). */
export const FeedRights = z.record(FeedName, Rights);
export type FeedRights = z.infer<typeof FeedRights>;

const isRole = (role: string): role is Role => Role.safeParse(role).success;

/** The SAS rights of a set of rights ('listen-send' when both); undefined for none. */
function rightsOf(rights: Iterable<FeedRight>): Rights | undefined {
  const set = new Set(rights);
  if (set.has('listen') && set.has('send')) return 'listen-send';
  if (set.has('listen')) return 'listen';
  if (set.has('send')) return 'send';
  return undefined;
}

/** The rights a SAS `rights` value stands for. */
const rightsIn = (rights: Rights): FeedRight[] => rights.split('-') as FeedRight[];

/** Whether `asked` asks for nothing beyond `granted`. */
export const rightsWithin = (asked: Rights, granted: Rights | undefined): boolean => granted !== undefined && rightsIn(asked).every((right) => rightsIn(granted).includes(right));

/** Whether any of these roles opens the admin APIs (unknown names grant nothing). */
export const grantsAdmin = (roles: readonly string[]): boolean => roles.some((role) => isRole(role) && ROLES[role].admin);

/** Whether any of these roles grants a right on feeds at all. */
export const grantsFeeds = (roles: readonly string[]): boolean => roles.some((role) => isRole(role) && ROLES[role].feeds.length > 0);

/**
 * The rights these roles grant on one feed; undefined for none. Only Keyway writes a tenant's audit
 * feed (the entitlement service's export), so on it every role grants listen at most.
 */
function feedRightsOf(roles: readonly string[], feed: string): Rights | undefined {
  const rights = roles.flatMap((role) => (isRole(role) ? ROLES[role].feeds : []));
  return rightsOf(feed === AUDIT_FEED ? rights.filter((right) => right === 'listen') : rights);
}

/** Feed by feed, the rights these roles grant; feeds they grant nothing on are left out. */
export function rightsByFeed(roles: readonly string[], feeds: readonly string[]): FeedRights {
  const granted: FeedRights = {};
  for (const feed of feeds) {
    const rights = feedRightsOf(roles, feed);
    if (rights) granted[feed] = rights;
  }
  return granted;
}

/**
 * The rights an issued token grants on its feeds: its `rights` claim, or (a token issued before
 * the claim existed) what its roles grant on the feeds of its scope. A malformed claim grants nothing.
 */
export function tokenFeedRights(claims: { roles: readonly string[]; rights?: unknown }, feeds: readonly string[]): FeedRights {
  if (claims.rights === undefined) return rightsByFeed(claims.roles, feeds);
  const parsed = FeedRights.safeParse(claims.rights);
  if (!parsed.success) return {};
  const granted: FeedRights = {};
  for (const feed of feeds) {
    const rights = parsed.data[feed];
    if (rights) granted[feed] = rights;
  }
  return granted;
}

/** Feed by feed, the rights both grant (a refresh never widens what its token granted). */
export function intersectRights(a: FeedRights, b: FeedRights): FeedRights {
  const both: FeedRights = {};
  for (const [feed, rights] of Object.entries(a)) {
    const common = rightsOf(rightsIn(rights).filter((right) => b[feed] !== undefined && rightsIn(b[feed]).includes(right)));
    if (common) both[feed] = common;
  }
  return both;
}

/** A product a tier gives, with the versions of it a tenant on the tier may download. */
export const TierProduct = z.object({ product: ProductId, versions: VersionRange });
export type TierProduct = z.infer<typeof TierProduct>;

/**
 * The rights a token grants on releases (the `releases` claim PAS writes), product by product:
 * `versions` bounds `download` only.
 */
export const ReleaseRights = z.record(ProductId, z.object({ rights: z.array(ReleaseRight), versions: VersionRange }));
export type ReleaseRights = z.infer<typeof ReleaseRights>;

/** Whether any of these roles grants a right on releases at all. */
export const grantsReleases = (roles: readonly string[]): boolean => roles.some((role) => isRole(role) && ROLES[role].releases.length > 0);

/** Versions in either range ("*" takes in the other; "||" is semver's "or"). */
const unionRanges = (a: string, b: string): string => (a === b ? a : a === '*' || b === '*' ? '*' : `${a} || ${b}`);

/**
 * Product by product, the release rights these roles grant (the role table): each role's rights on
 * the tier's products (their ranges) or on the user's own products (every version). Products with no
 * right are left out.
 */
export function releaseRightsOf(roles: readonly string[], userProducts: readonly string[], tierProducts: readonly TierProduct[]): ReleaseRights {
  const granted = new Map<string, { rights: Set<ReleaseRight>; versions: string | undefined }>();
  const grant = (product: string, rights: readonly ReleaseRight[], versions: string) => {
    const entry = granted.get(product) ?? { rights: new Set<ReleaseRight>(), versions: undefined };
    for (const right of rights) entry.rights.add(right);
    // download granted twice on one product (a downloader publishing it): every version either allows
    if (rights.includes('download')) entry.versions = entry.versions === undefined ? versions : unionRanges(entry.versions, versions);
    granted.set(product, entry);
  };
  for (const role of roles) {
    if (!isRole(role) || ROLES[role].releases.length === 0) continue;
    const { releases, releaseProducts } = ROLES[role];
    if (releaseProducts === 'tier') for (const { product, versions } of tierProducts) grant(product, releases, versions);
    else for (const product of userProducts) grant(product, releases, '*');
  }
  const rights: ReleaseRights = {};
  for (const [product, entry] of granted) {
    if (entry.rights.size > 0) rights[product] = { rights: ReleaseRight.options.filter((r) => entry.rights.has(r)), versions: entry.versions ?? '*' };
  }
  return rights;
}

/**
 * A published pre-release is within a range when its numbers are: publishing it is the vendor's
 * decision to release it (semver's default would hide 2.0.0-rc.1 even from "*").
 */
const RANGE_OPTIONS = { includePrerelease: true } as const;

/**
 * Whether these rights allow `right` on `product` (and, for download, on `version`: within the
 * product's range). A version that is not strict semver allows nothing.
 */
export function mayOnRelease(rights: ReleaseRights, product: string, right: ReleaseRight, version?: string): boolean {
  const entry = Object.hasOwn(rights, product) ? rights[product] : undefined;
  if (!entry?.rights.includes(right)) return false;
  if (version === undefined) return true;
  if (semver.valid(version) !== version) return false;
  return right !== 'download' || semver.satisfies(version, entry.versions, RANGE_OPTIONS);
}

/**
 * Versions in both ranges. Semver has no parentheses, so (a1 || a2) and (b1 || b2) is written out as
 * a1 b1 || a1 b2 || a2 b1 || a2 b2 (a space is "and"); past the 200 characters a range may have, the
 * second (the entitlement service's current answer) stands alone.
 */
function intersectRanges(a: string, b: string): string {
  if (a === b || b === '*') return a;
  if (a === '*') return b;
  const both = a
    .split('||')
    .flatMap((x) => b.split('||').map((y) => `${x.trim()} ${y.trim()}`))
    .join(' || ');
  return both.length <= 200 && semver.validRange(both) !== null ? both : b;
}

/** Product by product, the release rights both grant (a refresh never widens what its token granted). */
export function intersectReleaseRights(a: ReleaseRights, b: ReleaseRights): ReleaseRights {
  const both: ReleaseRights = {};
  for (const [product, entry] of Object.entries(a)) {
    const other = Object.hasOwn(b, product) ? b[product] : undefined;
    const rights = entry.rights.filter((right) => other?.rights.includes(right));
    if (other && rights.length > 0) both[product] = { rights, versions: intersectRanges(entry.versions, other.versions) };
  }
  return both;
}

/** The release rights an issued token grants: its `releases` claim; a missing or malformed claim grants nothing. */
export function tokenReleaseRights(claims: { releases?: unknown }): ReleaseRights {
  const parsed = ReleaseRights.safeParse(claims.releases);
  return parsed.success ? parsed.data : {};
}
