import {
  AuthorizeDecision,
  FeedEntitlement,
  RegisteredClientKey,
  RoleList,
  Subscription,
  SubscriptionList,
  SubscriptionNames,
  Tenant,
  TenantFeedList,
  TenantPage,
  Tier,
  TierList,
  User,
  UserList,
  type AuthorizeRequest,
  type CreateTenant,
  type CreateUser,
  type PutTier,
  type Role,
  type TenantPageQuery,
  type UpdateTenant,
  type UpdateUser,
} from '@keyway/contracts';
import { call, createHttp, send, toApiError, type ClientOptions } from './http.ts';

/**
 * The entitlement service: authorization (PAS, PAC) and the operator admin API. Admin calls
 * authenticate with the operator certificate (`clientCert`) or an operator access token
 * (`accessToken`). Errors are ApiError with the service's code (404 not_found, 409 conflict, …).
 */
export function entitlementClient(options: ClientOptions) {
  const http = createHttp(options);
  const t = (tenant: string) => `/v1/tenants/${encodeURIComponent(tenant)}`;
  const u = (tenant: string, user: string) => `${t(tenant)}/users/${encodeURIComponent(user)}`;
  const f = (tenant: string, feed: string) => `${t(tenant)}/feeds/${encodeURIComponent(feed)}`;
  const s = (tenant: string, feed: string, name: string) => `${f(tenant, feed)}/subscriptions/${encodeURIComponent(name)}`;
  const keyPath = (tenant: string, user: string, kid: string) => `${u(tenant, user)}/keys/${encodeURIComponent(kid)}`;
  /** for answers without a body: 204 */
  const noContent = async (request: Parameters<typeof send>[0]) => {
    const response = await send(request, 'entitlement');
    if (response.status !== 204) throw toApiError(response);
  };
  /** 201 (created) or 200 (already there / replaced), with the resource */
  const upsert = async <T>(request: Parameters<typeof send>[0], parse: (data: unknown) => T) => {
    const response = await send(request, 'entitlement');
    if (response.status !== 200 && response.status !== 201) throw toApiError(response);
    return { ...parse(response.data), created: response.status === 201 };
  };

  return {
    /** internal (mTLS, PAS and PAC only) */
    authorize: (request: AuthorizeRequest) => call(() => http.post('/v1/authorize', request), AuthorizeDecision, 'entitlement'),
    /** internal (mTLS, topic service only): the names of the feed's listed subscriptions */
    subscriptionNames: (tenant: string, feed: string) => call(() => http.get(`/internal${f(tenant, feed)}/subscriptions`), SubscriptionNames, 'entitlement'),
    /** internal (mTLS, audit service only): whether the tenant has the feed */
    feedEntitlement: (tenant: string, feed: string) => call(() => http.get(`/internal${f(tenant, feed)}`), FeedEntitlement, 'entitlement'),

    /** tenants: feeds listed or taken from a tier (not both) */
    createTenant: (tenant: CreateTenant) => call(() => http.post('/v1/tenants', tenant), Tenant, 'entitlement'),
    /** one page in id order; pass `next_cursor` back as `cursor` until it is absent */
    listTenants: (query: TenantPageQuery = {}) => call(() => http.get('/v1/tenants', { params: query }), TenantPage, 'entitlement'),
    getTenant: (tenant: string) => call(() => http.get(t(tenant)), Tenant, 'entitlement'),
    updateTenant: (tenant: string, change: UpdateTenant) => call(() => http.patch(t(tenant), change), Tenant, 'entitlement'),
    /** revokes every session and SAS key of the tenant within seconds; idempotent */
    suspendTenant: (tenant: string) => call(() => http.post(`${t(tenant)}/suspend`), Tenant, 'entitlement'),
    /** logins work again; revoked sessions stay revoked; idempotent */
    resumeTenant: (tenant: string) => call(() => http.post(`${t(tenant)}/resume`), Tenant, 'entitlement'),
    /** 409 conflict unless suspended first; removes the users and their credentials */
    deleteTenant: (tenant: string) => noContent(() => http.delete(t(tenant))),

    /** users: without a password the user logs in with a registered key, or once one is set */
    createUser: (tenant: string, user: CreateUser) => call(() => http.post(`${t(tenant)}/users`, user), User, 'entitlement'),
    listUsers: (tenant: string) => call(() => http.get(`${t(tenant)}/users`), UserList, 'entitlement'),
    getUser: (tenant: string, user: string) => call(() => http.get(u(tenant, user)), User, 'entitlement'),
    /** a new email and/or the full set of roles; removed roles end the user's sessions */
    updateUser: (tenant: string, user: string, change: UpdateUser) => call(() => http.patch(u(tenant, user), change), User, 'entitlement'),
    setRoles: (tenant: string, user: string, roles: Role[]) => call(() => http.put(`${u(tenant, user)}/roles`, { roles }), User, 'entitlement'),
    /** sets or resets the password and ends the user's sessions and SAS keys */
    setPassword: (tenant: string, user: string, password: string) => noContent(() => http.put(`${u(tenant, user)}/password`, { password })),
    deleteUser: (tenant: string, user: string) => noContent(() => http.delete(u(tenant, user))),
    /** a public JWK (EC P-256 or Ed25519) the user's agent signs RFC 7523 client assertions with; the server validates it */
    registerKey: (tenant: string, user: string, kid: string, jwk: object) =>
      call(() => http.put(keyPath(tenant, user, kid), { jwk }), RegisteredClientKey, 'entitlement'),
    removeKey: (tenant: string, user: string, kid: string) => noContent(() => http.delete(keyPath(tenant, user, kid))),

    /** the fixed role set, with what each role allows */
    listRoles: () => call(() => http.get('/v1/roles'), RoleList, 'entitlement'),

    /** feeds, each with the names of its subscriptions */
    listFeeds: (tenant: string) => call(() => http.get(`${t(tenant)}/feeds`), TenantFeedList, 'entitlement'),
    grantFeed: (tenant: string, feed: string) => call(() => http.put(f(tenant, feed)), Tenant, 'entitlement'),
    /** revokes the sessions and SAS keys that used the feed; idempotent */
    removeFeed: (tenant: string, feed: string) => noContent(() => http.delete(f(tenant, feed))),
    listSubscriptions: (tenant: string, feed: string) => call(() => http.get(`${f(tenant, feed)}/subscriptions`), SubscriptionList, 'entitlement'),
    /** only listed subscriptions (and `default`) can be received from; the topic service declares the queue on first use; `created` false when listed already (409 over the per-feed limit) */
    createSubscription: (tenant: string, feed: string, name: string) => upsert(() => http.post(s(tenant, feed, name)), (data) => Subscription.parse(data)),
    /** drops it from the inventory and deletes its queues; idempotent */
    deleteSubscription: (tenant: string, feed: string, name: string) => noContent(() => http.delete(s(tenant, feed, name))),

    /** product tiers; changing one changes the feeds of every tenant on it */
    listTiers: () => call(() => http.get('/v1/tiers'), TierList, 'entitlement'),
    getTier: (tier: string) => call(() => http.get(`/v1/tiers/${encodeURIComponent(tier)}`), Tier, 'entitlement'),
    /** `created` false when an existing tier was replaced */
    putTier: (tier: string, definition: PutTier) => upsert(() => http.put(`/v1/tiers/${encodeURIComponent(tier)}`, definition), (data) => Tier.parse(data)),
    /** the tenant's feeds become the tier's; feeds left out are removed (and revoked) */
    setTenantTier: (tenant: string, tier: string) => call(() => http.put(`${t(tenant)}/tier`, { tier }), Tenant, 'entitlement'),
  };
}
export type EntitlementClient = ReturnType<typeof entitlementClient>;
