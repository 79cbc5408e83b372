import {
  entitlementRoutes,
  type AuthorizeRequest,
  type CreateTenant,
  type CreateUser,
  type PutTier,
  type ReplayRequest,
  type Role,
  type TenantPageQuery,
  type UpdateTenant,
  type UpdateUser,
} from '@keyway/contracts';
import { createHttp, type ClientOptions } from './http.ts';
import { routeCaller } from './route.ts';

/**
 * The entitlement service: authorization (PAS, PAC) and the operator admin API. Admin calls
 * authenticate with the operator certificate (`clientCert`) or an operator access token
 * (`accessToken`). Errors are ApiError with the service's code (404 not_found, 409 conflict, …).
 */
export function entitlementClient(options: ClientOptions) {
  const http = createHttp(options);
  const api = routeCaller(http, 'entitlement');
  const r = entitlementRoutes;

  return {
    /** internal (mTLS, PAS and PAC only) */
    authorize: (request: AuthorizeRequest) => api.call(r.authorize, { body: request }),
    /** internal (mTLS, topic service only): the names of the feed's listed subscriptions */
    subscriptionNames: (tenant: string, feed: string) => api.call(r.subscriptionNames, { params: { tenant, feed } }),
    /** internal (mTLS, audit service only): whether the tenant has the feed */
    feedEntitlement: (tenant: string, feed: string) => api.call(r.feedEntitlement, { params: { tenant, feed } }),

    /** tenants: feeds listed or taken from a tier (not both) */
    createTenant: (tenant: CreateTenant) => api.call(r.createTenant, { body: tenant }),
    /** one page in id order; pass `next_cursor` back as `cursor` until it is absent */
    listTenants: (query: TenantPageQuery = {}) => api.call(r.listTenants, { query }),
    getTenant: (tenant: string) => api.call(r.getTenant, { params: { tenant } }),
    updateTenant: (tenant: string, change: UpdateTenant) => api.call(r.updateTenant, { params: { tenant }, body: change }),
    /** revokes every session and SAS key of the tenant within seconds; idempotent */
    suspendTenant: (tenant: string) => api.call(r.suspendTenant, { params: { tenant } }),
    /** logins work again; revoked sessions stay revoked; idempotent */
    resumeTenant: (tenant: string) => api.call(r.resumeTenant, { params: { tenant } }),
    /** 409 conflict unless suspended first; removes the users and their credentials */
    deleteTenant: (tenant: string) => api.call(r.deleteTenant, { params: { tenant } }),

    /** users: without a password the user logs in with a registered key, or once one is set */
    createUser: (tenant: string, user: CreateUser) => api.call(r.createUser, { params: { tenant }, body: user }),
    listUsers: (tenant: string) => api.call(r.listUsers, { params: { tenant } }),
    getUser: (tenant: string, user: string) => api.call(r.getUser, { params: { tenant, user } }),
    /** a new email and/or the full set of roles; removed roles end the user's sessions */
    updateUser: (tenant: string, user: string, change: UpdateUser) => api.call(r.updateUser, { params: { tenant, user }, body: change }),
    setRoles: (tenant: string, user: string, roles: Role[]) => api.call(r.setRoles, { params: { tenant, user }, body: { roles } }),
    /** sets or resets the password and ends the user's sessions and SAS keys */
    setPassword: (tenant: string, user: string, password: string) => api.call(r.setPassword, { params: { tenant, user }, body: { password } }),
    deleteUser: (tenant: string, user: string) => api.call(r.deleteUser, { params: { tenant, user } }),
    /** a public JWK (EC P-256 or Ed25519) the user's agent signs RFC 7523 client assertions with; the server validates it */
    registerKey: (tenant: string, user: string, kid: string, jwk: object) => api.call(r.registerKey, { params: { tenant, user, kid }, body: { jwk: jwk as Record<string, unknown> } }),
    removeKey: (tenant: string, user: string, kid: string) => api.call(r.removeKey, { params: { tenant, user, kid } }),

    /** the fixed role set, with what each role allows */
    listRoles: () => api.call(r.listRoles),

    /** feeds, each with the names of its subscriptions */
    listFeeds: (tenant: string) => api.call(r.listFeeds, { params: { tenant } }),
    grantFeed: (tenant: string, feed: string) => api.call(r.grantFeed, { params: { tenant, feed } }),
    /** revokes the sessions and SAS keys that used the feed; idempotent */
    removeFeed: (tenant: string, feed: string) => api.call(r.removeFeed, { params: { tenant, feed } }),
    listSubscriptions: (tenant: string, feed: string) => api.call(r.listSubscriptions, { params: { tenant, feed } }),
    /**
     * only listed subscriptions (and `default`) can be received from; the topic service declares the queues before it is listed (503 when it cannot); `created` false when listed already (409 over the per-feed limit).
     * `startAt`: the feed's batches retained since then are replayed into it as well.
     */
    createSubscription: (tenant: string, feed: string, name: string, options: { startAt?: Date | string } = {}) =>
      api.upsert(r.createSubscription, { params: { tenant, feed, name }, body: options.startAt === undefined ? undefined : { start_at: new Date(options.startAt).toISOString() } }),
    /** drops it from the inventory and deletes its queues; idempotent */
    deleteSubscription: (tenant: string, feed: string, name: string) => api.call(r.deleteSubscription, { params: { tenant, feed, name } }),
    /** moves up to `max` (default 100) of the subscription's dead letters back to it, oldest first; answers how many */
    resubmitDeadLetters: async (tenant: string, feed: string, name: string, max?: number): Promise<number> =>
      (await api.call(r.resubmitDeadLetters, { params: { tenant, feed, name }, body: max === undefined ? {} : { max } })).resubmitted,
    /** replays the feed's retained batches into the subscription from a time or a stream offset (recorded as replay.requested); the replay's first status */
    replay: (tenant: string, feed: string, name: string, request: ReplayRequest) => api.call(r.replaySubscription, { params: { tenant, feed, name }, body: request }),
    /** a replay's status as it goes; ApiError 404 replay_not_found when there is no such replay */
    replayStatus: (tenant: string, feed: string, name: string, replayId: string) => api.call(r.replayStatus, { params: { tenant, feed, name, replayId } }),

    /** product tiers; changing one changes the feeds of every tenant on it */
    listTiers: () => api.call(r.listTiers),
    getTier: (tier: string) => api.call(r.getTier, { params: { tier } }),
    /** `created` false when an existing tier was replaced */
    putTier: (tier: string, definition: PutTier) => api.upsert(r.putTier, { params: { tier }, body: definition }),
    /** the tenant's feeds become the tier's; feeds left out are removed (and revoked) */
    setTenantTier: (tenant: string, tier: string) => api.call(r.setTenantTier, { params: { tenant }, body: { tier } }),
  };
}
export type EntitlementClient = ReturnType<typeof entitlementClient>;
