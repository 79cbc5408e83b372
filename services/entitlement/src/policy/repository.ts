import { randomUUID } from 'node:crypto';
import { Tenant, User, type Role } from '@keyway/contracts';
import { Conflict, NotFound } from '@keyway/kit';
import type { Store } from '@keyway/store';

/** Tenants, users and feeds in the entitlement service's own store prefix. */
export function policyRepository(store: Store, now: () => Date = () => new Date()) {
  const tenantKey = (id: string) => `tenant:${id}`;
  const userKey = (id: string) => `user:${id}`;
  const emailKey = (email: string) => `email:${email}`;
  const tenantUsersKey = (id: string) => `tenant-users:${id}`;

  const repo = {
    async findTenant(id: string): Promise<Tenant | undefined> {
      const raw = await store.get(tenantKey(id));
      return raw ? Tenant.parse(JSON.parse(raw)) : undefined;
    },
    async getTenant(id: string): Promise<Tenant> {
      const tenant = await repo.findTenant(id);
      if (!tenant) throw new NotFound(`tenant ${id} does not exist`);
      return tenant;
    },
    async createTenant(input: { id: string; name: string; feeds: string[] }): Promise<Tenant> {
      const tenant: Tenant = { ...input, feeds: [...new Set(input.feeds)], status: 'active', createdAt: now().toISOString() };
      const created = await store.set(tenantKey(input.id), JSON.stringify(tenant), { ifAbsent: true });
      if (!created) throw new Conflict(`tenant ${input.id} already exists`);
      await store.sadd('tenants', input.id);
      return tenant;
    },
    async saveTenant(tenant: Tenant): Promise<Tenant> {
      await store.set(tenantKey(tenant.id), JSON.stringify(tenant));
      return tenant;
    },
    async findUser(id: string): Promise<User | undefined> {
      const raw = await store.get(userKey(id));
      return raw ? User.parse(JSON.parse(raw)) : undefined;
    },
    async createUser(tenant: string, input: { email: string; roles: Role[] }): Promise<User> {
      const user: User = { id: randomUUID(), tenant, email: input.email, roles: [...new Set(input.roles)], createdAt: now().toISOString() };
      // The email index is claimed first so two concurrent creations cannot both succeed.
      const claimed = await store.set(emailKey(input.email), user.id, { ifAbsent: true });
      if (!claimed) throw new Conflict(`a user with email ${input.email} already exists`);
      await store.set(userKey(user.id), JSON.stringify(user));
      await store.sadd(tenantUsersKey(tenant), user.id);
      return user;
    },
    /** Undo a creation whose credentials could not be registered, so nothing half-made stays. */
    async deleteUser(user: User): Promise<void> {
      await store.del(userKey(user.id), emailKey(user.email));
      await store.srem(tenantUsersKey(user.tenant), user.id);
    },
    async listUsers(tenant: string): Promise<User[]> {
      const ids = await store.smembers(tenantUsersKey(tenant));
      const users = await Promise.all(ids.map((id) => repo.findUser(id)));
      return users.filter((u): u is User => u !== undefined).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    },
  };
  return repo;
}
export type PolicyRepository = ReturnType<typeof policyRepository>;
