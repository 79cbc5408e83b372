import { randomUUID } from 'node:crypto';
import { type Subscription, Tenant, Tier, type TierProduct, User, type Role, type FeedDelivery } from '@keyway/contracts';
import { Conflict, NotFound } from '@keyway/kit';
import type { Store } from '@keyway/store';

/** A tier as an operator puts it: its feeds, products, and how its feeds' batches are kept and delivered (by feed, or `*`). */
export interface TierInput {
  name: string;
  feeds: string[];
  products?: TierProduct[];
  delivery?: Record<string, FeedDelivery>;
}

/** Writers that lose a compare-and-set read again; more losses than this in a row is refused (409). */
const MAX_ATTEMPTS = 5;

/**
 * Tenants, users, feeds, subscriptions and tiers in the entitlement service's own store prefix.
 * Records are JSON; updates are compare-and-set, so two operators changing one tenant at once (a
 * suspension and a tier change, say) cannot silently undo each other.
 */
export function policyRepository(store: Store, now: () => Date = () => new Date()) {
  const tenantKey = (id: string) => `tenant:${id}`;
  /** every tenant id, lexicographically ordered (paging by id) */
  const tenantIndex = 'tenant-index';
  /** tenants created before the index existed were kept in a plain set */
  const legacyTenantSet = 'tenants';
  const userKey = (id: string) => `user:${id}`;
  const emailKey = (email: string) => `email:${email}`;
  const tenantUsersKey = (id: string) => `tenant-users:${id}`;
  const subscriptionsKey = (tenant: string, feed: string) => `subscriptions:${tenant}:${feed}`;
  const tierKey = (id: string) => `tier:${id}`;
  const tierIndex = 'tier-index';
  const tierTenantsKey = (id: string) => `tier-tenants:${id}`;

  /** Read-change-write of one JSON record with compare-and-set; `change` may run more than once. */
  async function update<T>(key: string, parse: (raw: string) => T, change: (current: T) => T, missing: () => Error): Promise<{ before: T; after: T }> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
      const raw = await store.get(key);
      if (raw === null) throw missing();
      const before = parse(raw);
      const after = change(before);
      if (await store.compareAndSet(key, raw, JSON.stringify(after))) return { before, after };
    }
    throw new Conflict('the resource kept changing meanwhile; retry', `compare-and-set lost ${MAX_ATTEMPTS} times on ${key}`);
  }
  const parseTenant = (raw: string) => Tenant.parse(JSON.parse(raw));
  const parseUser = (raw: string) => User.parse(JSON.parse(raw));
  const tenantMissing = (id: string) => () => new NotFound(`tenant ${id} does not exist`);

  const repo = {
    async findTenant(id: string): Promise<Tenant | undefined> {
      const raw = await store.get(tenantKey(id));
      return raw ? parseTenant(raw) : undefined;
    },
    async getTenant(id: string): Promise<Tenant> {
      const tenant = await repo.findTenant(id);
      if (!tenant) throw tenantMissing(id)();
      return tenant;
    },
    async createTenant(input: { id: string; name: string; feeds: string[]; tier?: string; crmCustomerId?: string }): Promise<Tenant> {
      const tenant: Tenant = { ...input, feeds: [...new Set(input.feeds)], status: 'active', createdAt: now().toISOString() };
      const created = await store.set(tenantKey(input.id), JSON.stringify(tenant), { ifAbsent: true });
      if (!created) throw new Conflict(`tenant ${input.id} already exists`);
      await store.zadd(tenantIndex, input.id);
      if (input.tier) await store.sadd(tierTenantsKey(input.tier), input.id);
      return tenant;
    },
    /** Compare-and-set update; keeps the tier → tenants index in step with the tenant's tier. */
    async updateTenant(id: string, change: (tenant: Tenant) => Tenant): Promise<{ before: Tenant; after: Tenant }> {
      const result = await update(tenantKey(id), parseTenant, change, tenantMissing(id));
      const { before, after } = result;
      if (before.tier !== after.tier) {
        if (before.tier) await store.srem(tierTenantsKey(before.tier), id);
        if (after.tier) await store.sadd(tierTenantsKey(after.tier), id);
      }
      return result;
    },
    /** Tenants in id order after `cursor`; `next` is set when more follow. */
    async listTenants(limit: number, cursor?: string): Promise<{ tenants: Tenant[]; next?: string }> {
      const legacy = await store.smembers(legacyTenantSet);
      if (legacy.length > 0) {
        await store.zadd(tenantIndex, ...legacy);
        await store.del(legacyTenantSet);
      }
      const ids = await store.zrangeByLex(tenantIndex, { min: cursor === undefined ? undefined : { value: cursor, inclusive: false }, limit: limit + 1 });
      const page = ids.slice(0, limit);
      const tenants = (await Promise.all(page.map((id) => repo.findTenant(id)))).filter((t): t is Tenant => t !== undefined);
      return { tenants, next: ids.length > limit ? page.at(-1) : undefined };
    },
    /** Removes the tenant record, its indexes and its subscription inventory (its users go first, one by one). */
    async deleteTenant(tenant: Tenant): Promise<void> {
      await store.del(tenantKey(tenant.id), tenantUsersKey(tenant.id), ...tenant.feeds.map((feed) => subscriptionsKey(tenant.id, feed)));
      await store.zrem(tenantIndex, tenant.id);
      if (tenant.tier) await store.srem(tierTenantsKey(tenant.tier), tenant.id);
    },

    async findUser(id: string): Promise<User | undefined> {
      const raw = await store.get(userKey(id));
      return raw ? parseUser(raw) : undefined;
    },
    async findUserByEmail(email: string): Promise<User | undefined> {
      const id = await store.get(emailKey(email));
      return id ? repo.findUser(id) : undefined;
    },
    async createUser(tenant: string, input: { email: string; roles: Role[]; products?: string[] }): Promise<User> {
      const user: User = { id: randomUUID(), tenant, email: input.email, roles: [...new Set(input.roles)], products: [...new Set(input.products ?? [])], createdAt: now().toISOString() };
      // The email index is claimed first so two concurrent creations cannot both succeed.
      const claimed = await store.set(emailKey(input.email), user.id, { ifAbsent: true });
      if (!claimed) throw new Conflict(`a user with email ${input.email} already exists`);
      await store.set(userKey(user.id), JSON.stringify(user));
      await store.sadd(tenantUsersKey(tenant), user.id);
      return user;
    },
    async getUser(tenant: string, id: string): Promise<User> {
      const user = await repo.findUser(id);
      if (!user || user.tenant !== tenant) throw new NotFound(`user ${id} does not exist in tenant ${tenant}`);
      return user;
    },
    /** A new email claims its index entry first (409 when another user holds it) and frees the old one after. */
    async updateUser(tenant: string, id: string, change: { email?: string; roles?: Role[]; products?: string[] }): Promise<{ before: User; after: User }> {
      const current = await repo.getUser(tenant, id);
      const email = change.email ?? current.email;
      const newEmail = email !== current.email;
      if (newEmail && !(await store.set(emailKey(email), id, { ifAbsent: true }))) throw new Conflict(`a user with email ${email} already exists`);
      try {
        const result = await update(
          userKey(id),
          parseUser,
          (user) => ({ ...user, email, roles: change.roles ? [...new Set(change.roles)] : user.roles, products: change.products ? [...new Set(change.products)] : user.products }),
          () => new NotFound(`user ${id} does not exist in tenant ${tenant}`),
        );
        if (result.before.email !== email) await store.del(emailKey(result.before.email));
        return result;
      } catch (err) {
        if (newEmail) await store.del(emailKey(email));
        throw err;
      }
    },
    /** Removes the user; also undoes a creation whose credentials could not be registered. */
    async deleteUser(user: User): Promise<void> {
      await store.del(userKey(user.id), emailKey(user.email));
      await store.srem(tenantUsersKey(user.tenant), user.id);
    },
    async listUsers(tenant: string): Promise<User[]> {
      const ids = await store.smembers(tenantUsersKey(tenant));
      const users = await Promise.all(ids.map((id) => repo.findUser(id)));
      return users.filter((u): u is User => u !== undefined).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    },

    async listSubscriptions(tenant: string, feed: string): Promise<Subscription[]> {
      const entries = Object.entries(await store.hgetall(subscriptionsKey(tenant, feed)));
      return entries.map(([name, createdAt]) => ({ tenant, feed, name, createdAt })).sort((a, b) => a.name.localeCompare(b.name));
    },
    /** `created` is false when the subscription was listed already. */
    async addSubscription(tenant: string, feed: string, name: string): Promise<{ subscription: Subscription; created: boolean }> {
      const existing = await store.hget(subscriptionsKey(tenant, feed), name);
      if (existing !== null) return { subscription: { tenant, feed, name, createdAt: existing }, created: false };
      const createdAt = now().toISOString();
      await store.hset(subscriptionsKey(tenant, feed), { [name]: createdAt });
      return { subscription: { tenant, feed, name, createdAt }, created: true };
    },
    removeSubscription: async (tenant: string, feed: string, name: string) => (await store.hdel(subscriptionsKey(tenant, feed), name)) > 0,
    async dropSubscriptions(tenant: string, feeds: string[]): Promise<void> {
      if (feeds.length > 0) await store.del(...feeds.map((feed) => subscriptionsKey(tenant, feed)));
    },

    async findTier(id: string): Promise<Tier | undefined> {
      const raw = await store.get(tierKey(id));
      return raw ? Tier.parse(JSON.parse(raw)) : undefined;
    },
    async getTier(id: string): Promise<Tier> {
      const tier = await repo.findTier(id);
      if (!tier) throw new NotFound(`tier ${id} does not exist`);
      return tier;
    },
    /** Creates or replaces the tier; `previous` is the tier it replaced (undefined for a new one). */
    async putTier(id: string, input: TierInput): Promise<{ tier: Tier; previous: Tier | undefined }> {
      const tier: Tier = {
        id,
        name: input.name,
        feeds: [...new Set(input.feeds)],
        products: input.products ?? [],
        ...(input.delivery && { delivery: input.delivery }),
        updatedAt: now().toISOString(),
      };
      const previous = await store.get(tierKey(id));
      await store.set(tierKey(id), JSON.stringify(tier));
      await store.zadd(tierIndex, id);
      return { tier, previous: previous === null ? undefined : Tier.parse(JSON.parse(previous)) };
    },
    async listTiers(): Promise<Tier[]> {
      const tiers = await Promise.all((await store.zrangeByLex(tierIndex)).map((id) => repo.findTier(id)));
      return tiers.filter((t): t is Tier => t !== undefined);
    },
    tenantsOnTier: (id: string) => store.smembers(tierTenantsKey(id)),
  };
  return repo;
}
export type PolicyRepository = ReturnType<typeof policyRepository>;
