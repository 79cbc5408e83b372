import { z } from 'zod';
import { Email, FeedName, ProductId, Role, SAFE_TEXT, SAFE_TEXT_MESSAGE, SafeText, Slug, SubscriptionName, TenantId } from './common.ts';
import { OneTimeCode, Password } from './idp.ts';
import { FeedRights, ReleaseRights, ROLES, TierProduct } from './roles.ts';
import { JwkThumbprint } from './keys.ts';

/** Keyway's own topics (entitlement change events) live under this tenant name, which no customer may take. */
export const SYSTEM_TENANT = 'keyway';
/** The vendor's own tenant by default: its users, and only they, may hold the operator role. */
export const VENDOR_TENANT = 'vendor';

export const AuthorizeRequest = z.object({
  sub: z.string().min(1),
  tenant: TenantId,
  /** feeds asked for; empty = every feed the tenant has */
  feeds: z.array(FeedName).max(50).default([]),
  /**
   * what the login is for: the tenant's feeds (the rights the user's roles grant), the operator admin
   * APIs, or releases (the rights the user's roles grant on the tier's and the user's products)
   */
  access: z.enum(['feeds', 'operator', 'releases']).default('feeds'),
});
export type AuthorizeRequest = z.input<typeof AuthorizeRequest>;

export const DenialReason = z.enum(['tenant_unknown', 'tenant_suspended', 'user_unknown', 'role_missing', 'feed_not_entitled', 'no_feeds', 'product_not_entitled']);
export type DenialReason = z.infer<typeof DenialReason>;

export const AuthorizeDecision = z.discriminatedUnion('allow', [
  /**
   * feeds: those granted; rights: what the user's roles grant on each (the role table); none for
   * operator and releases access. releases: product by product, the release rights (access releases only).
   */
  z.object({ allow: z.literal(true), feeds: z.array(FeedName), rights: FeedRights, roles: z.array(Role), releases: ReleaseRights.optional() }),
  z.object({ allow: z.literal(false), reason: DenialReason }),
]);
export type AuthorizeDecision = z.infer<typeof AuthorizeDecision>;

export const TierId = Slug.describe('product tier id');
/** A name as stored and answered (records written before names were checked may hold anything). */
const DisplayName = z.string().trim().min(1).max(200);
/** A name as accepted: every admin API and the CRM webhook refuse control and bidi formatting characters. */
const NewDisplayName = DisplayName.regex(SAFE_TEXT, SAFE_TEXT_MESSAGE);

export const Tenant = z.object({
  id: TenantId,
  name: DisplayName,
  status: z.enum(['active', 'suspended']),
  /** who suspended it: a CRM contract turning active again resumes only what the CRM suspended */
  suspendedBy: z.enum(['operator', 'crm']).optional(),
  feeds: z.array(FeedName),
  /** the product tier the tenant's feeds follow (PUT /v1/tenants/:t/tier) */
  tier: TierId.optional(),
  /** the CRM customer the tenant is synced from; the CRM changes no other tenant */
  crmCustomerId: z.string().optional(),
  createdAt: z.string(),
});
export type Tenant = z.infer<typeof Tenant>;

/** A new tenant's feeds are listed, or come from a tier; not both. */
export const CreateTenant = z
  .object({
    id: TenantId.refine((id) => id !== SYSTEM_TENANT, 'is reserved'),
    name: NewDisplayName,
    feeds: z.array(FeedName).max(100).optional(),
    tier: TierId.optional(),
  })
  .refine((t) => t.feeds === undefined || t.tier === undefined, 'give feeds or tier, not both');
export type CreateTenant = z.input<typeof CreateTenant>;

export const UpdateTenant = z.object({ name: NewDisplayName });
export type UpdateTenant = z.input<typeof UpdateTenant>;

/** GET /v1/tenants: tenants in id order, `limit` at a time; `cursor` is the last id of the previous page. */
export const TenantPageQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(100), cursor: TenantId.optional() });
export type TenantPageQuery = z.input<typeof TenantPageQuery>;
export const TenantPage = z.object({ tenants: z.array(Tenant), next_cursor: TenantId.optional() });
export type TenantPage = z.infer<typeof TenantPage>;

/** The products a user's uploader and publisher roles apply to (each product once). */
const UserProducts = z
  .array(ProductId)
  .max(100)
  .refine((products) => new Set(products).size === products.length, 'each product may be listed once');

/** products: what the user's uploader and publisher roles apply to (records from before products: none). */
export const User = z.object({ id: z.string(), tenant: TenantId, email: Email, roles: z.array(Role), products: z.array(ProductId).default([]), createdAt: z.string() });
export type User = z.infer<typeof User>;

export const CreateUser = z.object({ email: Email, password: Password.optional(), roles: z.array(Role).min(1).max(10), products: UserProducts.default([]) });
export type CreateUser = z.input<typeof CreateUser>;

export const UserList = z.object({ users: z.array(User) });
export type UserList = z.infer<typeof UserList>;

/** PATCH …/users/:u: a new email (the login name), the full set of roles and/or the full list of products. */
export const UpdateUser = z
  .object({ email: Email.optional(), roles: z.array(Role).min(1).max(10).optional(), products: UserProducts.optional() })
  .refine((u) => u.email !== undefined || u.roles !== undefined || u.products !== undefined, 'give email, roles or products');
export type UpdateUser = z.input<typeof UpdateUser>;

/** PUT …/users/:u/password: sets (or resets) the password and ends the user's sessions. */
export const SetPassword = z.object({ password: Password });
export type SetPassword = z.input<typeof SetPassword>;

/** The fixed role set (GET /v1/roles), described by the role table. */
export const ROLE_DESCRIPTIONS = Object.fromEntries(Role.options.map((role) => [role, ROLES[role].description])) as Record<Role, string>;
export const RoleList = z.object({ roles: z.array(z.object({ name: Role, description: z.string() })) });
export type RoleList = z.infer<typeof RoleList>;

/**
 * A named subscription of a tenant feed: the operator's inventory. The topic service receives only
 * from subscriptions listed here (and `default`), and declares a subscription's queues before it is
 * listed, so it holds every batch from then on; dropping one from the inventory deletes its queues.
 */
export const Subscription = z.object({ tenant: TenantId, feed: FeedName, name: SubscriptionName, createdAt: z.string() });
/** The optional body of a subscription's creation (issue 16): with `start_at`, it also gets the feed's batches retained since then (a replay). */
export const CreateSubscription = z.object({ start_at: z.string().datetime({ offset: true }).optional() }).strict();
export type CreateSubscription = z.infer<typeof CreateSubscription>;
export type Subscription = z.infer<typeof Subscription>;
export const SubscriptionList = z.object({ subscriptions: z.array(Subscription) });
export type SubscriptionList = z.infer<typeof SubscriptionList>;
/**
 * How a feed's batches are kept and delivered on a tier (issue 16); each value left out is the topic
 * service's default. Retention is at least an hour (a replay needs something to read), the duplicate
 * window at most 7 days (its keys are held in Redis that long).
 */
export const FeedDelivery = z.object({
  /** how long the feed's replay stream keeps a batch */
  retention_sec: z.number().int().min(3600).optional(),
  /** the most the feed's replay stream holds */
  retention_bytes: z.number().int().positive().optional(),
  /** a batch not completed this long after its publish is dead-lettered (TTLExpiredException); 0 = never */
  message_ttl_sec: z.number().int().nonnegative().optional(),
  /** a batch id published again within this long is answered as accepted and not delivered again; 0 = off */
  duplicate_window_sec: z
    .number()
    .int()
    .nonnegative()
    .max(7 * 86_400)
    .optional(),
});
export type FeedDelivery = z.infer<typeof FeedDelivery>;
/** the tier's key that applies to every feed it has no entry of its own for */
export const ANY_FEED = '*';
/** A tier's delivery policy by feed name, or `*` for every other feed. */
const TierDelivery = z.record(z.union([FeedName, z.literal(ANY_FEED)]), FeedDelivery).refine((delivery) => Object.keys(delivery).length <= 101, 'at most 100 feeds and `*`');

/**
 * The names of a feed's listed subscriptions, as the topic service asks for them (internal, mTLS),
 * and the delivery policy the tenant's tier sets for the feed (its `*` entry under the feed's own).
 */
export const SubscriptionNames = z.object({ subscriptions: z.array(SubscriptionName), delivery: FeedDelivery.optional() });
export type SubscriptionNames = z.infer<typeof SubscriptionNames>;

/** Whether a tenant has a feed, as the audit service asks before exporting a tenant's trail (internal, mTLS). */
export const FeedEntitlement = z.object({ tenant: TenantId, feed: FeedName, entitled: z.boolean() });
export type FeedEntitlement = z.infer<typeof FeedEntitlement>;

export const TenantFeedList = z.object({ tenant: TenantId, feeds: z.array(z.object({ name: FeedName, subscriptions: z.array(SubscriptionName) })) });
export type TenantFeedList = z.infer<typeof TenantFeedList>;

/** The products a tier gives, each once, with the versions of each. */
const TierProducts = z
  .array(TierProduct)
  .max(100)
  .refine((products) => new Set(products.map((p) => p.product)).size === products.length, 'each product may be listed once');

/** A product tier: the feeds a tenant on it has, and the products (and versions) its downloaders may download. */
export const Tier = z.object({ id: TierId, name: DisplayName, feeds: z.array(FeedName), products: z.array(TierProduct).default([]), delivery: TierDelivery.optional(), updatedAt: z.string() });
export type Tier = z.infer<typeof Tier>;
export const PutTier = z.object({ name: NewDisplayName, feeds: z.array(FeedName).max(100), products: TierProducts.default([]), delivery: TierDelivery.optional() });
export type PutTier = z.input<typeof PutTier>;
export const TierList = z.object({ tiers: z.array(Tier) });
export type TierList = z.infer<typeof TierList>;
export const SetTenantTier = z.object({ tier: TierId });
export type SetTenantTier = z.input<typeof SetTenantTier>;

/** Roles a CRM contact may be given: never operator, which only the vendor's own users hold. */
const CustomerRole = Role.exclude(['operator']);

/**
 * The headers of a CRM webhook delivery. The signature covers everything acted on:
 * `v2=<hex HMAC-SHA256 of "v2:<timestamp>:<delivery header or empty>\n<raw body>">`.
 */
export const CRM_HEADERS = { timestamp: 'x-keyway-timestamp', signature: 'x-keyway-signature', delivery: 'x-keyway-delivery' } as const;
export const DeliveryId = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1-128 letters, digits, . _ : -');

/** POST /v1/crm/webhook: one customer's contract, mapped idempotently onto a tenant, its feeds and users. */
export const CrmDelivery = z.object({
  id: DeliveryId.optional(),
  customer: z.object({ id: SafeText(128), name: NewDisplayName }),
  contract: z.object({
    status: z.enum(['active', 'cancelled', 'suspended']),
    tier: TierId,
    contacts: z
      .array(z.object({ email: Email, roles: z.array(CustomerRole).min(1).max(10) }))
      .max(200)
      .default([]),
  }),
});
export type CrmDelivery = z.input<typeof CrmDelivery>;
export const CrmDeliveryResult = z.object({
  id: z.string(),
  duplicate: z.boolean(),
  tenant: TenantId.optional(),
  /** true: signed before the newest delivery applied for this customer, so nothing was applied */
  superseded: z.boolean().optional(),
});
export type CrmDeliveryResult = z.infer<typeof CrmDeliveryResult>;

/** What the revocation path listens to (design.md, "The subsequent exchange"): the entitlement service's changes and PAS's family revocations. */
export const ChangeEvent = z.discriminatedUnion('type', [
  z.object({ id: z.string(), at: z.string(), type: z.literal('user.removed'), tenant: TenantId, sub: z.string() }),
  z.object({ id: z.string(), at: z.string(), type: z.literal('role.removed'), tenant: TenantId, sub: z.string(), roles: z.array(Role) }),
  z.object({ id: z.string(), at: z.string(), type: z.literal('feed.removed'), tenant: TenantId, feed: FeedName }),
  z.object({ id: z.string(), at: z.string(), type: z.literal('tenant.suspended'), tenant: TenantId }),
  /** the tenant was deleted (after being suspended): nothing of it may stay usable */
  z.object({ id: z.string(), at: z.string(), type: z.literal('tenant.removed'), tenant: TenantId }),
  /**
   * Release rights narrowed: the tenant's tier dropped these products or changed their versions (no
   * sub), or the user's own product list dropped them (sub). Release rights are checked again at
   * every refresh (strict mode) and at every open of the releases service.
   */
  z.object({ id: z.string(), at: z.string(), type: z.literal('products.changed'), tenant: TenantId, sub: z.string().optional(), products: z.array(ProductId).min(1) }),
  /** the user's password was set or reset: the sessions opened with the old one end */
  z.object({ id: z.string(), at: z.string(), type: z.literal('credentials.changed'), tenant: TenantId, sub: z.string() }),
  /**
   * Published by PAS (its own outbox, same topic): a refresh family was revoked (RFC 7009, reuse
   * detection, an entitlement change); PAC revokes the SAS keys minted from it.
   */
  z.object({ id: z.string(), at: z.string(), type: z.literal('family.revoked'), tenant: TenantId, sub: z.string(), fid: z.string().min(1).max(128), reason: z.string().max(128) }),
  /**
   * Published by PAS: an operator revoked an agent's DPoP key pair (RFC 9449 `cnf.jkt`, its RFC 7638
   * thumbprint); PAC revokes every SAS key bound to it, whatever family minted it.
   */
  z.object({
    id: z.string(),
    at: z.string(),
    type: z.literal('dpop_key.revoked'),
    tenant: TenantId,
    jkt: JwkThumbprint,
    reason: z.string().max(128),
  }),
]);
export type ChangeEvent = z.infer<typeof ChangeEvent>;
export const CHANGE_EVENTS_TOPIC = { tenant: SYSTEM_TENANT, topic: 'entitlement-changes' } as const;
/** Each consumer has its own durable subscription, declared by the publisher so nothing is missed before it starts. */
export const CHANGE_EVENT_SUBSCRIBERS = ['pas', 'pac'] as const;

export const UpdateRoles = z.object({ roles: z.array(Role).min(1).max(10) });

/** The operator console's sign-in (POST /console/session): the entitlement service makes PAS's password grant with scope=operator. */
export const ConsoleSignIn = z.object({ email: Email, password: z.string().min(1).max(1024), otp: OneTimeCode.optional() });
export type ConsoleSignIn = z.input<typeof ConsoleSignIn>;
/** The console's refresh and sign-out (POST /console/session/refresh, /revoke). */
export const ConsoleRefreshToken = z.object({ refresh_token: z.string().min(1).max(8192) });
export type ConsoleRefreshToken = z.input<typeof ConsoleRefreshToken>;
