import { z } from 'zod';
import { AUDIT_FEED } from './audit.ts';
import { FeedName, Rights, Role } from './common.ts';

/** A right on a tenant feed (a SAS key's `listen` / `send`). */
export const FeedRight = z.enum(['listen', 'send']);
export type FeedRight = z.infer<typeof FeedRight>;
/** A right on the coming releases service (SAS `listen` / `send` map to download / upload there). */
const ReleaseRight = z.enum(['download', 'upload', 'publish', 'withdraw']);

export const RoleGrant = z.object({
  /** rights on each of the tenant's feeds */
  feeds: z.array(FeedRight),
  /** rights on the releases of the tenant's tier or product */
  releases: z.array(ReleaseRight),
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
  'full-control': { feeds: ['listen', 'send'], releases: [], admin: false, description: 'log in for the tenant’s feeds and hold SAS keys with listen and send' },
  'read-only': { feeds: ['listen'], releases: [], admin: false, description: 'log in for the tenant’s feeds and hold SAS keys with listen only' },
  producer: { feeds: ['send'], releases: [], admin: false, description: 'log in for the tenant’s feeds and hold SAS keys with send only (the vendor platform publishing batches)' },
  downloader: { feeds: [], releases: ['download'], admin: false, description: 'releases (coming): download the products and versions of the tenant’s tier' },
  uploader: { feeds: [], releases: ['upload'], admin: false, description: 'releases (coming): upload to the tenant’s upload location of a product' },
  publisher: { feeds: [], releases: ['upload', 'publish', 'withdraw'], admin: false, description: 'releases (coming): upload, publish and withdraw versions of a product' },
  operator: { feeds: [], releases: [], admin: true, description: 'use the admin APIs of every service (PAS login with scope=operator); only users of the vendor tenant' },
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
