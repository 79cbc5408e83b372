import { SYSTEM_TENANT, type Role, type Subscription, type Tenant, type Tier, type User } from '@keyway/contracts';
import type { IdpClient } from '@keyway/clients';
import { Conflict, InvalidRequest, NotFound, type Logger } from '@keyway/kit';
import type { ChangeEvents } from '../events/changes.ts';
import type { PolicyRepository } from '../policy/repository.ts';

export interface AdminDeps {
  policy: PolicyRepository;
  idp: IdpClient;
  events: ChangeEvents;
  /** the vendor's tenant: only its users may hold the operator role */
  operatorTenant: string;
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

/**
 * Every admin change, shared by the admin API and the CRM sync. Each change is stored first and,
 * where it takes access away, then announced as a ChangeEvent (through the outbox), which PAS and PAC
 * follow to revoke refresh families and SAS keys within seconds (strict mode). Each is logged as
 * `admin.<noun>_<verb>` on the request's logger, which names the actor.
 */
export function adminOperations(deps: AdminDeps) {
  const { policy, idp, events } = deps;

  /** The operator role opens every tenant's admin API: only the vendor's own users may hold it. */
  const checkRoles = (tenant: string, roles: readonly Role[]) => {
    if (roles.includes('operator') && tenant !== deps.operatorTenant) {
      throw new InvalidRequest(`the operator role is held only by users of the vendor tenant ${deps.operatorTenant}`);
    }
  };

  return (log: Logger) => {
    /** Sets the tenant's feeds (and tier); every feed no longer included is announced as removed. */
    const setFeeds = async (id: string, feeds: (tenant: Tenant) => string[], tier?: string): Promise<Tenant> => {
      const { before, after } = await policy.updateTenant(id, (tenant) => ({ ...tenant, feeds: [...new Set(feeds(tenant))], tier: tier ?? tenant.tier }));
      const removed = before.feeds.filter((feed) => !after.feeds.includes(feed));
      await policy.dropSubscriptions(id, removed);
      for (const feed of removed) await events.emit({ type: 'feed.removed', tenant: id, feed });
      return after;
    };

    const ops = {
      async createTenant(input: { id: string; name: string; feeds?: string[]; tier?: string }, source: { crmCustomerId?: string } = {}): Promise<Tenant> {
        if (input.id === SYSTEM_TENANT) throw new InvalidRequest(`tenant id ${SYSTEM_TENANT} is reserved`);
        const tier = input.tier === undefined ? undefined : await policy.getTier(input.tier);
        const tenant = await policy.createTenant({ id: input.id, name: input.name, feeds: tier?.feeds ?? input.feeds ?? [], tier: tier?.id, ...source });
        log.info('admin.tenant_created', { tenant: tenant.id, feeds: tenant.feeds, tier: tenant.tier, crmCustomerId: tenant.crmCustomerId });
        return tenant;
      },

      async renameTenant(id: string, name: string): Promise<Tenant> {
        const { after } = await policy.updateTenant(id, (tenant) => ({ ...tenant, name }));
        log.info('admin.tenant_updated', { tenant: id, name });
        return after;
      },

      /** Idempotent; suspending announces tenant.suspended, which revokes every session and SAS key of the tenant. */
      async suspendTenant(id: string, by: 'operator' | 'crm'): Promise<Tenant> {
        const { before, after } = await policy.updateTenant(id, (tenant) => (tenant.status === 'suspended' ? tenant : { ...tenant, status: 'suspended', suspendedBy: by }));
        if (before.status !== 'suspended') {
          await events.emit({ type: 'tenant.suspended', tenant: id });
          log.info('admin.tenant_suspended', { tenant: id, by });
        }
        return after;
      },

      /** Idempotent; access comes back with the next login (revoked sessions stay revoked). */
      async resumeTenant(id: string): Promise<Tenant> {
        const { before, after } = await policy.updateTenant(id, ({ suspendedBy: _by, ...tenant }) => ({ ...tenant, status: 'active' }));
        if (before.status !== 'active') log.info('admin.tenant_resumed', { tenant: id });
        return after;
      },

      /**
       * Deletes a suspended tenant (409 for an active one: suspending first has already revoked its
       * access, so deletion is the second, deliberate step). Each user's credentials go from the IdP,
       * then the records; tenant.removed is announced last. A failure part-way leaves the tenant
       * suspended, and deleting again finishes the job.
       */
      async deleteTenant(id: string): Promise<void> {
        const tenant = await policy.getTenant(id);
        if (tenant.status !== 'suspended') throw new Conflict(`tenant ${id} is active: suspend it before deleting it`);
        const users = await policy.listUsers(id);
        for (const user of users) {
          await idp.remove(user.id);
          await policy.deleteUser(user);
        }
        await policy.deleteTenant(tenant);
        await events.emit({ type: 'tenant.removed', tenant: id });
        log.info('admin.tenant_deleted', { tenant: id, users: users.length });
      },

      async grantFeed(id: string, feed: string): Promise<Tenant> {
        const tenant = await setFeeds(id, (t) => [...t.feeds, feed]);
        log.info('admin.feed_granted', { tenant: id, feed });
        return tenant;
      },

      async removeFeed(id: string, feed: string): Promise<void> {
        const tenant = await policy.getTenant(id);
        if (!tenant.feeds.includes(feed)) return;
        await setFeeds(id, (t) => t.feeds.filter((f) => f !== feed));
        log.info('admin.feed_removed', { tenant: id, feed });
      },

      /** The tenant's feeds become the tier's; a tenant already on the tier with its feeds is left alone. */
      async setTenantTier(id: string, tierId: string): Promise<Tenant> {
        const [tier, current] = await Promise.all([policy.getTier(tierId), policy.getTenant(id)]);
        if (current.tier === tier.id && sameSet(current.feeds, tier.feeds)) return current;
        const tenant = await setFeeds(id, () => tier.feeds, tier.id);
        log.info('admin.tenant_tier_set', { tenant: id, tier: tier.id, feeds: tenant.feeds });
        return tenant;
      },

      /** Creates or replaces a tier; every tenant on it follows (feeds left out are removed from them). */
      async putTier(id: string, input: { name: string; feeds: string[] }): Promise<{ tier: Tier; created: boolean }> {
        const result = await policy.putTier(id, input);
        log.info(result.created ? 'admin.tier_created' : 'admin.tier_updated', { tier: id, feeds: result.tier.feeds });
        for (const tenant of await policy.tenantsOnTier(id)) await ops.setTenantTier(tenant, id);
        return result;
      },

      async addSubscription(id: string, feed: string, name: string): Promise<{ subscription: Subscription; created: boolean }> {
        const tenant = await policy.getTenant(id);
        if (!tenant.feeds.includes(feed)) throw new NotFound(`tenant ${id} does not have feed ${feed}`);
        const result = await policy.addSubscription(id, feed, name);
        if (result.created) log.info('admin.subscription_created', { tenant: id, feed, subscription: name });
        return result;
      },

      async removeSubscription(id: string, feed: string, name: string): Promise<void> {
        await policy.getTenant(id);
        if (await policy.removeSubscription(id, feed, name)) log.info('admin.subscription_deleted', { tenant: id, feed, subscription: name });
      },

      /** Without a password the user logs in with a registered key, or once an operator sets one. */
      async createUser(tenant: string, input: { email: string; password?: string; roles: Role[] }): Promise<User> {
        checkRoles(tenant, input.roles);
        await policy.getTenant(tenant);
        const user = await policy.createUser(tenant, input);
        try {
          await idp.register({ sub: user.id, tenant, email: user.email, password: input.password });
        } catch (err) {
          await policy.deleteUser(user);
          throw err;
        }
        log.info('admin.user_created', { tenant, user: user.id, roles: user.roles, initialLogin: input.password === undefined ? 'none' : 'password' });
        return user;
      },

      /**
       * A new email is the new login name (the IdP follows; the sessions stay). Removed roles are
       * announced (role.removed): tokens carry the roles they were issued with.
       */
      async updateUser(tenant: string, id: string, change: { email?: string; roles?: Role[] }): Promise<User> {
        if (change.roles) checkRoles(tenant, change.roles);
        const { before, after } = await policy.updateUser(tenant, id, change);
        if (after.email !== before.email) {
          try {
            await idp.register({ sub: id, tenant, email: after.email });
          } catch (err) {
            await policy.updateUser(tenant, id, { email: before.email });
            throw err;
          }
        }
        const removed = before.roles.filter((role) => !after.roles.includes(role));
        if (removed.length > 0) await events.emit({ type: 'role.removed', tenant, sub: id, roles: removed });
        log.info('admin.user_updated', { tenant, user: id, emailChanged: after.email !== before.email, roles: after.roles, removedRoles: removed });
        return after;
      },

      /** Sets or resets the password at the IdP, then ends the user's sessions (credentials.changed). */
      async setPassword(tenant: string, id: string, password: string): Promise<void> {
        const user = await policy.getUser(tenant, id);
        await idp.register({ sub: user.id, tenant, email: user.email, password });
        await events.emit({ type: 'credentials.changed', tenant, sub: user.id });
        log.info('admin.user_password_set', { tenant, user: user.id });
      },

      async deleteUser(tenant: string, id: string): Promise<void> {
        const user = await policy.getUser(tenant, id);
        await idp.remove(user.id);
        await policy.deleteUser(user);
        await events.emit({ type: 'user.removed', tenant, sub: user.id });
        log.info('admin.user_deleted', { tenant, user: user.id });
      },
    };
    return ops;
  };
}
export type AdminOperations = ReturnType<ReturnType<typeof adminOperations>>;
export type Admin = ReturnType<typeof adminOperations>;
