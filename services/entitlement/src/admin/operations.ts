import { audited, mergeFields, requestFields, type AuditFields, type AuditLog, type AuditRequest } from '@keyway/audit';
import { DEFAULT_SUBSCRIPTION, SYSTEM_TENANT, type ReplayRequest, type ReplayStatus, type Role, type Subscription, type Tenant, type Tier, type TierProduct, type User } from '@keyway/contracts';
import { ApiError, type IdpClient } from '@keyway/clients';
import { Conflict, InvalidRequest, NotFound, OAuthError, TemporarilyUnavailable, type Logger } from '@keyway/kit';
import type { ChangeEvents } from '../events/changes.ts';
import type { PolicyRepository, TierInput } from '../policy/repository.ts';

export interface AdminDeps {
  policy: PolicyRepository;
  idp: IdpClient;
  events: ChangeEvents;
  /** the vendor's tenant: only its users may hold the operator role */
  operatorTenant: string;
  /** the entitlement service's audit stream: every change is recorded as admin.<noun>_<verb> */
  audit: AuditLog;
  /**
   * declares a subscription's queues (the topic service does, with its queue bounds); idempotent; rejects when it cannot;
   * with `startAt`, the topic service also replays the feed's batches retained since then into it
   */
  declareSubscriptionQueues: (tenant: string, feed: string, name: string, options?: { startAt?: string }) => Promise<void>;
  /** moves up to `max` of a subscription's dead letters back to it (the topic service does); resolves with how many; rejects when it cannot */
  resubmitDeadLetters: (tenant: string, feed: string, name: string, max: number) => Promise<number>;
  /** starts a replay of the feed's retained batches into a subscription (the topic service does); resolves with its first status; rejects when it cannot */
  replay: (tenant: string, feed: string, name: string, request: ReplayRequest) => Promise<ReplayStatus>;
  /** a replay's status at the topic service; rejects with its 404 when there is no such replay */
  replayStatus: (tenant: string, feed: string, name: string, replayId: string) => Promise<ReplayStatus>;
  /** deletes a feed's replay stream, with what it retains, at the topic service (the feed is removed from the tenant); idempotent; rejects when it cannot */
  deleteFeedStream: (tenant: string, feed: string) => Promise<void>;
  /** deletes a subscription's queues (and what they hold) at the broker; idempotent */
  deleteSubscriptionQueues: (tenant: string, feed: string, name: string) => Promise<void>;
  /** the most subscriptions one feed of a tenant may list (each is two queues holding a copy of every batch) */
  maxSubscriptionsPerFeed: number;
}

/** The request making a change: its logger names the actor, its fields go into the trail. */
export type AdminRequest = AuditRequest & { log: Logger; get(name: string): string | undefined };

/**
 * The operator's own access token when the change was asked for with one: forwarded to the IdP as
 * proof on credential changes (an operator account's credentials change only with it).
 */
const operatorToken = (req: AdminRequest): string | undefined => (req.operator?.via === 'bearer' ? /^Bearer +(\S+)$/i.exec(req.get('authorization') ?? '')?.[1] : undefined);

/** Values for the trail's detail, which holds strings only; lists are comma-separated. */
const text = (values: Record<string, string | number | boolean | readonly string[] | undefined>): Record<string, string> =>
  Object.fromEntries(Object.entries(values).flatMap(([k, v]) => (v === undefined ? [] : [[k, (Array.isArray(v) ? v.join(',') : String(v)).slice(0, 512)]])));

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

/** The products `before` gives that `after` no longer gives, or gives with other versions: release rights narrowed (or moved). */
const narrowedProducts = (before: readonly TierProduct[], after: readonly TierProduct[]): string[] =>
  before.filter(({ product, versions }) => !after.some((p) => p.product === product && p.versions === versions)).map((p) => p.product);

/** 409 when a feed already lists the most subscriptions allowed. */
class SubscriptionLimitReached extends OAuthError {
  constructor(limit: number, detail: string) {
    super(409, 'subscription_limit_reached', `the feed already lists ${limit} subscriptions, the most a feed may have: remove one first`, detail);
  }
}

/** The IdP's refusals (a bad key, too many keys) are the operator's to fix: pass them on as they are. */
function passOnRefusal(err: unknown): never {
  if (err instanceof ApiError && err.status >= 400 && err.status < 500) throw new OAuthError(err.status, err.code, err.description);
  throw err;
}

/**
 * Every admin change, shared by the admin API and the CRM sync. Each change is stored first and,
 * where it takes access away, then announced as a ChangeEvent (through the outbox), which PAS and PAC
 * follow to revoke refresh families and SAS keys within seconds (strict mode). Each is logged as
 * `admin.<noun>_<verb>` on the request's logger, which names the actor, and recorded under the same
 * action in the audit trail with the actor's fields (`extra` adds to them, e.g. the CRM delivery).
 * The record is part of the change (style rule 10): callers refuse a change up front when the trail
 * does not take writes (requireWritableTrail), and when the record still fails the request fails
 * with server_error.
 */
export function adminOperations(deps: AdminDeps) {
  const { policy, idp, events } = deps;

  /** The operator role opens every tenant's admin API: only the vendor's own users may hold it. */
  const checkRoles = (tenant: string, roles: readonly Role[]) => {
    if (roles.includes('operator') && tenant !== deps.operatorTenant) {
      throw new InvalidRequest(`the operator role is held only by users of the vendor tenant ${deps.operatorTenant}`);
    }
  };

  /** 503 when the topic service cannot declare the queues: the subscription is then not listed (fail closed) */
  const declareQueues = async (tenant: string, feed: string, name: string, options?: { startAt?: string }): Promise<void> => {
    try {
      await deps.declareSubscriptionQueues(tenant, feed, name, options);
    } catch (err) {
      throw new TemporarilyUnavailable('the subscription cannot be declared right now, retry later', `topic service: ${String(err)}`, { 'Retry-After': '5' });
    }
  };

  /** 404 unless the tenant has the feed and the subscription is `default` or listed. */
  const subscriptionOf = async (tenant: string, feed: string, name: string): Promise<void> => {
    if (!(await policy.getTenant(tenant)).feeds.includes(feed)) throw new NotFound(`tenant ${tenant} does not have feed ${feed}`);
    if (name !== DEFAULT_SUBSCRIPTION && !(await policy.listSubscriptions(tenant, feed)).some((s) => s.name === name)) {
      throw new NotFound(`feed ${feed} of tenant ${tenant} lists no subscription ${name}`);
    }
  };

  /** A call to the topic service: its refusals (4xx) are passed on as they are, anything else is 503. */
  const topicCall = async <T>(unavailable: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) throw new OAuthError(err.status, err.code, err.description);
      throw new TemporarilyUnavailable(unavailable, `topic service: ${String(err)}`, { 'Retry-After': '5' });
    }
  };

  /**
   * Deletes the replay streams of feeds about to be granted to a tenant, before the grant: a feed
   * granted again must not replay what was published under the earlier grant. 503 when the topic
   * service cannot (nothing is granted then, and asking again finishes the job), as for a declare.
   * Removals delete them too, but never wait on it: taking access away works with the broker down.
   */
  const deleteStreams = async (tenant: string, feeds: readonly string[]): Promise<void> => {
    for (const feed of feeds) {
      try {
        await deps.deleteFeedStream(tenant, feed);
      } catch (err) {
        throw new TemporarilyUnavailable('the feed cannot be granted right now, retry later', `topic service, stream of ${feed}: ${String(err)}`, { 'Retry-After': '5' });
      }
    }
  };

  /** The user, checked to belong to the tenant (404 otherwise, as for a user that does not exist). */
  const userOf = async (tenant: string, id: string): Promise<User> => {
    await policy.getTenant(tenant);
    const user = await policy.findUser(id);
    if (!user || user.tenant !== tenant) throw new NotFound(`user ${id} does not exist in tenant ${tenant}`);
    return user;
  };

  return (req: AdminRequest, extra: AuditFields = {}) => {
    const log = req.log;
    const actor = mergeFields(requestFields(req), extra);
    const proof = operatorToken(req);
    /** One admin change, as the log and the trail see it. */
    const changed = (action: string, tenant: string | undefined, detail: Parameters<typeof text>[0]): Promise<void> =>
      audited({ audit: deps.audit }, { action, fields: mergeFields(actor, { tenant, detail: text(detail) }), refusal: false }, async () => log.info(action, { tenant, ...detail }));
    /** The listed subscriptions of these feeds of the tenant, to delete their queues once they are dropped. */
    const listedSubscriptions = async (tenant: string, feeds: readonly string[]) =>
      (await Promise.all(feeds.map(async (feed) => (await policy.listSubscriptions(tenant, feed)).map((s) => ({ feed, name: s.name }))))).flat();
    /**
     * Deletes the queues of subscriptions dropped with their feed or tenant. Access is already gone
     * (the inventory no longer lists them), so a broker that cannot be reached does not undo the
     * change: the queues then expire by themselves (x-expires).
     */
    const deleteQueuesOf = async (tenant: string, subscriptions: { feed: string; name: string }[]): Promise<void> => {
      for (const { feed, name } of subscriptions) {
        await deps.deleteSubscriptionQueues(tenant, feed, name).catch((err: unknown) => log.warn('subscription.queue_delete_failed', { tenant, feed, subscription: name, err }));
      }
    };
    /** Deletes the streams of removed feeds once access is gone; a failure is logged (the next grant deletes them first anyway). */
    const forgetStreams = async (tenant: string, feeds: readonly string[]): Promise<void> => {
      for (const feed of feeds) await deps.deleteFeedStream(tenant, feed).catch((err: unknown) => log.warn('feed.stream_delete_failed', { tenant, feed, err }));
    };
    /** Sets the tenant's feeds (and tier); a feed newly included has its stream deleted first (503 when it cannot), one no longer included is announced as removed. */
    const setFeeds = async (id: string, feeds: (tenant: Tenant) => string[], tier?: string): Promise<Tenant> => {
      const current = await policy.getTenant(id);
      const next = feeds(current);
      await deleteStreams(
        id,
        next.filter((feed) => !current.feeds.includes(feed)),
      );
      const { after, dropped } = await events.atomically(async () => {
        const { before, after } = await policy.updateTenant(id, (tenant) => ({ ...tenant, feeds: [...new Set(feeds(tenant))], tier: tier ?? tenant.tier }));
        const removed = before.feeds.filter((feed) => !after.feeds.includes(feed));
        const dropped = await listedSubscriptions(id, removed);
        await policy.dropSubscriptions(id, removed);
        for (const feed of removed) await events.emit({ type: 'feed.removed', tenant: id, feed });
        // a tenant's products are its tier's: another tier may give fewer, or other versions
        if (before.tier !== after.tier && before.tier !== undefined) {
          const [was, now] = await Promise.all([policy.findTier(before.tier), after.tier === undefined ? undefined : policy.findTier(after.tier)]);
          const narrowed = narrowedProducts(was?.products ?? [], now?.products ?? []);
          if (narrowed.length > 0) await events.emit({ type: 'products.changed', tenant: id, products: narrowed });
        }
        return { after, dropped };
      });
      await deleteQueuesOf(id, dropped);
      await forgetStreams(
        id,
        current.feeds.filter((feed) => !after.feeds.includes(feed)),
      );
      return after;
    };

    const ops = {
      async createTenant(input: { id: string; name: string; feeds?: string[]; tier?: string }, source: { crmCustomerId?: string } = {}): Promise<Tenant> {
        if (input.id === SYSTEM_TENANT) throw new InvalidRequest(`tenant id ${SYSTEM_TENANT} is reserved`);
        const tier = input.tier === undefined ? undefined : await policy.getTier(input.tier);
        // a tenant id used before starts without the earlier tenant's history
        await deleteStreams(input.id, tier?.feeds ?? input.feeds ?? []);
        const tenant = await policy.createTenant({ id: input.id, name: input.name, feeds: tier?.feeds ?? input.feeds ?? [], tier: tier?.id, ...source });
        await changed('admin.tenant_created', tenant.id, { feeds: tenant.feeds, tier: tenant.tier, crm_customer: tenant.crmCustomerId });
        return tenant;
      },

      async renameTenant(id: string, name: string): Promise<Tenant> {
        const { after } = await policy.updateTenant(id, (tenant) => ({ ...tenant, name }));
        await changed('admin.tenant_updated', id, { name });
        return after;
      },

      /** Idempotent; suspending announces tenant.suspended, which revokes every session and SAS key of the tenant. */
      async suspendTenant(id: string, by: 'operator' | 'crm'): Promise<Tenant> {
        const { before, after } = await events.atomically(async () => {
          const result = await policy.updateTenant(id, (tenant) => (tenant.status === 'suspended' ? tenant : { ...tenant, status: 'suspended', suspendedBy: by }));
          if (result.before.status !== 'suspended') await events.emit({ type: 'tenant.suspended', tenant: id });
          return result;
        });
        if (before.status !== 'suspended') await changed('admin.tenant_suspended', id, { by });
        return after;
      },

      /** Idempotent; access comes back with the next login (revoked sessions stay revoked). */
      async resumeTenant(id: string): Promise<Tenant> {
        const { before, after } = await policy.updateTenant(id, ({ suspendedBy: _by, ...tenant }) => ({ ...tenant, status: 'active' }));
        if (before.status !== 'active') await changed('admin.tenant_resumed', id, {});
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
        const dropped = await listedSubscriptions(id, tenant.feeds);
        await events.atomically(async () => {
          await policy.deleteTenant(tenant);
          await events.emit({ type: 'tenant.removed', tenant: id });
        });
        await changed('admin.tenant_deleted', id, { users: users.length });
        await deleteQueuesOf(id, dropped);
        await forgetStreams(id, tenant.feeds);
      },

      async grantFeed(id: string, feed: string): Promise<Tenant> {
        const tenant = await setFeeds(id, (t) => [...t.feeds, feed]);
        await changed('admin.feed_granted', id, { feed });
        return tenant;
      },

      async removeFeed(id: string, feed: string): Promise<void> {
        const tenant = await policy.getTenant(id);
        if (!tenant.feeds.includes(feed)) return;
        await setFeeds(id, (t) => t.feeds.filter((f) => f !== feed));
        await changed('admin.feed_removed', id, { feed });
      },

      /** The tenant's feeds become the tier's; a tenant already on the tier with its feeds is left alone. */
      async setTenantTier(id: string, tierId: string): Promise<Tenant> {
        const [tier, current] = await Promise.all([policy.getTier(tierId), policy.getTenant(id)]);
        if (current.tier === tier.id && sameSet(current.feeds, tier.feeds)) return current;
        const tenant = await setFeeds(id, () => tier.feeds, tier.id);
        await changed('admin.tier_set', id, { tier: tier.id, feeds: tenant.feeds });
        return tenant;
      },

      /**
       * Creates or replaces a tier; every tenant on it follows (feeds left out are removed from them).
       * Its products are read from the tier at each authorization, so a product dropped or given
       * other versions is announced (products.changed) for each tenant on it, with the tier's change.
       */
      async putTier(id: string, input: TierInput): Promise<{ tier: Tier; created: boolean }> {
        const result = await events.atomically(async () => {
          const put = await policy.putTier(id, input);
          const narrowed = narrowedProducts(put.previous?.products ?? [], put.tier.products);
          if (narrowed.length > 0) for (const tenant of await policy.tenantsOnTier(id)) await events.emit({ type: 'products.changed', tenant, products: narrowed });
          return { tier: put.tier, created: put.previous === undefined };
        });
        const products = result.tier.products.map(({ product, versions }) => `${product}@${versions}`);
        // the delivery policy as JSON (feed → values): the audit trail shows retention, TTL and duplicate window changes
        const delivery = result.tier.delivery && JSON.stringify(result.tier.delivery);
        await changed(result.created ? 'admin.tier_created' : 'admin.tier_updated', undefined, { tier: id, feeds: result.tier.feeds, products, delivery });
        for (const tenant of await policy.tenantsOnTier(id)) await ops.setTenantTier(tenant, id);
        return result;
      },

      /**
       * Lists a subscription, up to maxSubscriptionsPerFeed per feed (409 beyond). Two operators adding
       * at the same moment may pass the count together: the limit bounds what one tenant can ask for,
       * it is not an exact quota. With `startAt`, the feed's batches retained since then are replayed
       * into it too (issue 16), recorded with the start time even when the subscription was listed already.
       */
      async addSubscription(id: string, feed: string, name: string, options: { startAt?: string } = {}): Promise<{ subscription: Subscription; created: boolean }> {
        if (name === DEFAULT_SUBSCRIPTION) throw new InvalidRequest(`the ${DEFAULT_SUBSCRIPTION} subscription of every feed exists without being listed`);
        // checked here: the topic service's refusal would read as its being unavailable (503)
        if (options.startAt !== undefined && Date.parse(options.startAt) > Date.now()) throw new InvalidRequest('start_at is in the future: nothing was published since');
        const tenant = await policy.getTenant(id);
        if (!tenant.feeds.includes(feed)) throw new NotFound(`tenant ${id} does not have feed ${feed}`);
        const listed = await policy.listSubscriptions(id, feed);
        const existing = listed.find((s) => s.name === name);
        if (!existing && listed.length >= deps.maxSubscriptionsPerFeed) {
          throw new SubscriptionLimitReached(deps.maxSubscriptionsPerFeed, `tenant ${id} feed ${feed}: ${listed.length} listed`);
        }
        const result = existing ? { subscription: existing, created: false } : await policy.addSubscription(id, feed, name);
        // Declared before the answer (issue 12), so the subscription holds every batch from then on. The
        // topic service declares only listed subscriptions (it asks this inventory), hence stored first,
        // and taken back when it cannot be declared. Listed already, it is declared again, so creating it
        // again brings back queues that were lost.
        try {
          await declareQueues(id, feed, name, options);
        } catch (err) {
          if (result.created) await policy.removeSubscription(id, feed, name).catch((undo: unknown) => log.warn('subscription.unlist_failed', { tenant: id, feed, subscription: name, err: undo }));
          throw err;
        }
        if (result.created || options.startAt !== undefined) await changed('admin.subscription_added', id, { feed, subscription: name, start_at: options.startAt, created: result.created });
        return result;
      },

      /**
       * Moves up to `max` dead letters of a subscription (`default` or a listed one) back to it, at the
       * topic service, recorded as deadletters.resubmitted with how many moved. 404 for a tenant, feed
       * or subscription that does not exist; 503 when the topic service cannot do it now.
       */
      async resubmitDeadLetters(id: string, feed: string, name: string, max: number): Promise<number> {
        const tenant = await policy.getTenant(id);
        if (!tenant.feeds.includes(feed)) throw new NotFound(`tenant ${id} does not have feed ${feed}`);
        if (name !== DEFAULT_SUBSCRIPTION && !(await policy.listSubscriptions(id, feed)).some((s) => s.name === name)) {
          throw new NotFound(`feed ${feed} of tenant ${id} lists no subscription ${name}`);
        }
        const fields = mergeFields(actor, { tenant: id, detail: text({ feed, subscription: name, max }) });
        return audited({ audit: deps.audit }, { action: 'deadletters.resubmitted', fields, writable: true, refusal: false }, async (scope) => {
          let count: number;
          try {
            count = await deps.resubmitDeadLetters(id, feed, name, max);
          } catch (err) {
            if (err instanceof ApiError && err.status === 404) throw new NotFound(err.description);
            throw new TemporarilyUnavailable('the dead letters cannot be resubmitted right now, retry later', `topic service: ${String(err)}`, { 'Retry-After': '5' });
          }
          scope.note({ detail: { count: String(count) } });
          log.info('deadletters.resubmitted', { tenant: id, feed, subscription: name, count });
          return count;
        });
      },

      /**
       * Starts a replay of the feed's retained batches into a subscription (`default` or a listed one),
       * at the topic service, recorded as replay.requested under the operator with where it starts
       * and the replay's id. 404 for a tenant, feed or subscription that does not exist; the topic
       * service's 400 and 429 are passed on; 503 when it cannot do it now.
       */
      async replay(id: string, feed: string, name: string, request: ReplayRequest): Promise<ReplayStatus> {
        await subscriptionOf(id, feed, name);
        const from = request.from_time !== undefined ? { from_time: request.from_time } : { from_offset: request.from_offset };
        const fields = mergeFields(actor, { tenant: id, detail: text({ feed, subscription: name, ...from }) });
        return audited({ audit: deps.audit }, { action: 'replay.requested', fields, refusal: false }, async (scope) => {
          const status = await topicCall('the replay cannot be started right now, retry later', () => deps.replay(id, feed, name, request));
          scope.note({ detail: { replay: status.replay_id } });
          log.info('replay.requested', { tenant: id, feed, subscription: name, replayId: status.replay_id, ...from });
          return status;
        });
      },

      /** A replay's status (read only, not recorded). 404 as for replay, and for a replay the topic service does not know. */
      async replayStatus(id: string, feed: string, name: string, replayId: string): Promise<ReplayStatus> {
        await subscriptionOf(id, feed, name);
        return topicCall('the replay’s status cannot be read right now, retry later', () => deps.replayStatus(id, feed, name, replayId));
      },

      /**
       * Drops a subscription from the inventory (the topic service stops receiving from it), then
       * deletes its queues. Idempotent: when the queues cannot be deleted (503), deleting again
       * finishes the job.
       */
      async removeSubscription(id: string, feed: string, name: string): Promise<void> {
        if (name === DEFAULT_SUBSCRIPTION) throw new InvalidRequest(`the ${DEFAULT_SUBSCRIPTION} subscription of every feed exists without being listed`);
        await policy.getTenant(id);
        if (await policy.removeSubscription(id, feed, name)) await changed('admin.subscription_removed', id, { feed, subscription: name });
        await deps.deleteSubscriptionQueues(id, feed, name);
      },

      /** Without a password the user logs in with a registered key, or once an operator sets one. */
      async createUser(tenant: string, input: { email: string; password?: string; roles: Role[]; products?: string[] }): Promise<User> {
        checkRoles(tenant, input.roles);
        await policy.getTenant(tenant);
        const user = await policy.createUser(tenant, input);
        try {
          await idp.register({ sub: user.id, tenant, email: user.email, password: input.password }, proof);
        } catch (err) {
          await policy.deleteUser(user);
          throw err;
        }
        await changed('admin.user_created', tenant, { user: user.id, roles: user.roles, products: user.products, initial_login: input.password === undefined ? 'none' : 'password' });
        return user;
      },

      /**
       * A new email is the new login name (the IdP follows; the sessions stay). Removed roles are
       * announced (role.removed): tokens carry the roles they were issued with. Removed products are
       * announced too (products.changed): the release rights of the user's tokens narrow.
       */
      async updateUser(tenant: string, id: string, change: { email?: string; roles?: Role[]; products?: string[] }): Promise<User> {
        if (change.roles) checkRoles(tenant, change.roles);
        const { before, after, removed } = await events.atomically(async () => {
          const result = await policy.updateUser(tenant, id, change);
          const removed = result.before.roles.filter((role) => !result.after.roles.includes(role));
          if (removed.length > 0) await events.emit({ type: 'role.removed', tenant, sub: id, roles: removed });
          const droppedProducts = result.before.products.filter((product) => !result.after.products.includes(product));
          if (droppedProducts.length > 0) await events.emit({ type: 'products.changed', tenant, sub: id, products: droppedProducts });
          return { ...result, removed };
        });
        if (after.email !== before.email) {
          try {
            await idp.register({ sub: id, tenant, email: after.email }, proof).catch(passOnRefusal);
          } catch (err) {
            await policy.updateUser(tenant, id, { email: before.email });
            throw err;
          }
        }
        if (after.email !== before.email) await changed('admin.user_updated', tenant, { user: id, email_changed: true });
        if (!sameSet(before.roles, after.roles)) await changed('admin.roles_changed', tenant, { user: id, roles: after.roles, removed_roles: removed });
        if (!sameSet(before.products, after.products)) await changed('admin.user_products_changed', tenant, { user: id, products: after.products });
        return after;
      },

      /**
       * Ends the user's sessions (credentials.changed, stored first), then sets or resets the password
       * at the IdP: a failure part-way has ended the sessions and left the old password, never the
       * other way round (a reset after a theft must not leave the thief's sessions running).
       */
      async setPassword(tenant: string, id: string, password: string): Promise<void> {
        const user = await policy.getUser(tenant, id);
        await events.emit({ type: 'credentials.changed', tenant, sub: user.id });
        await idp.register({ sub: user.id, tenant, email: user.email, password }, proof).catch(passOnRefusal);
        await changed('admin.user_password_set', tenant, { user: user.id });
      },

      /** An RFC 7523 public key the user's agent signs client assertions with; the IdP holds and checks it. */
      async registerKey(tenant: string, id: string, kid: string, jwk: object) {
        const user = await userOf(tenant, id);
        const registered = await idp.registerKey(user.id, kid, jwk, proof).catch(passOnRefusal);
        await changed('admin.key_registered', tenant, { user: user.id, kid, replaced: !registered.created });
        return registered;
      },

      async removeKey(tenant: string, id: string, kid: string): Promise<void> {
        const user = await userOf(tenant, id);
        await idp.removeKey(user.id, kid).catch(passOnRefusal);
        await changed('admin.key_removed', tenant, { user: user.id, kid });
      },

      async deleteUser(tenant: string, id: string): Promise<void> {
        const user = await policy.getUser(tenant, id);
        // the record and its event first: once they are stored, access is gone whatever follows
        await events.atomically(async () => {
          await policy.deleteUser(user);
          await events.emit({ type: 'user.removed', tenant, sub: user.id });
        });
        // credentials left behind by a failure here cannot log in (PAS authorizes every login against the records)
        await idp.remove(user.id).catch((err: unknown) => log.warn('user.credentials_not_removed', { tenant, user: user.id, err }));
        await changed('admin.user_removed', tenant, { user: user.id });
      },
    };
    return ops;
  };
}
export type AdminOperations = ReturnType<ReturnType<typeof adminOperations>>;
export type Admin = ReturnType<typeof adminOperations>;
