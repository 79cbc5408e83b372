import { z } from 'zod';
import { FeedName, SubscriptionName, TenantId } from '../common.ts';
import {
  AuthorizeDecision,
  AuthorizeRequest,
  ConsoleRefreshToken,
  ConsoleSignIn,
  CrmDelivery,
  CrmDeliveryResult,
  FeedEntitlement,
  CreateSubscription,
  CreateTenant,
  CreateUser,
  PutTier,
  RoleList,
  SetPassword,
  SetTenantTier,
  Subscription,
  SubscriptionList,
  SubscriptionNames,
  Tenant,
  TenantFeedList,
  TenantPage,
  TenantPageQuery,
  Tier,
  TierId,
  TierList,
  UpdateRoles,
  UpdateTenant,
  UpdateUser,
  User,
  UserList,
} from '../entitlement.ts';
import { ClientKeyId, ClientKeyRegistration, RegisteredClientKey } from '../idp.ts';
import { AuditPage, ConsoleAuditQuery } from '../audit.ts';
import { DownloadReport } from '../releases.ts';
import { SasKeyRotation, SasKeyRotationRequest } from '../keys.ts';
import { noBody, jsonResponse, openApiDocument, operatorOnly, serviceOnly } from '../openapi.ts';
import { pathsOf, route } from '../route.ts';
import { TokenResponse } from '../pas.ts';
import { ReplayId, ReplayRequest, ReplayStatus, ResubmitDeadLetters, ResubmittedDeadLetters } from '../topic.ts';

const TenantPath = z.object({ tenant: TenantId });
const UserPath = TenantPath.extend({ user: z.string().min(1).max(128) });
const FeedPath = TenantPath.extend({ feed: FeedName });
const SubscriptionPath = FeedPath.extend({ name: SubscriptionName });
const KeyPath = UserPath.extend({ kid: ClientKeyId });
const TierPath = z.object({ tier: TierId });

/** The entitlement service's operations, declared once (server binding, client, OpenAPI and the endpoint fuzz). */
export const entitlementRoutes = {
  authorize: serviceOnly(['pas', 'pac', 'releases'], route({ method: 'post', path: '/v1/authorize', summary: 'the rights this user’s roles grant on these feeds of the tenant or on releases (the role table), or whether the user may use the operator admin APIs (PAS at each grant; PAC at each SAS mint and key check; the releases service at each open, access releases only)', body: { schema: AuthorizeRequest }, responses: { 200: jsonResponse(AuthorizeDecision, 'the feeds and rights granted, or the reason for a denial') }, errors: [400, 415] })),
  // the topic service receives only from the subscriptions an operator listed
  subscriptionNames: serviceOnly(['topic'], route({ method: 'get', path: '/internal/v1/tenants/{tenant}/feeds/{feed}/subscriptions', summary: 'the names of the feed’s listed subscriptions, which alone (and `default`) may be received from (topic service only)', description: 'An unknown tenant, or a feed the tenant does not have, lists none.', params: FeedPath, responses: { 200: jsonResponse(SubscriptionNames, 'the names') }, errors: [400] })),
  // the audit service exports a tenant's trail only to a tenant granted the audit feed
  feedEntitlement: serviceOnly(['audit'], route({ method: 'get', path: '/internal/v1/tenants/{tenant}/feeds/{feed}', summary: 'whether the tenant has the feed (audit service only: who receives the audit feed)', description: 'An unknown tenant has no feed.', params: FeedPath, responses: { 200: jsonResponse(FeedEntitlement, 'the answer') }, errors: [400] })),
  listTenants: operatorOnly(route({ method: 'get', path: '/v1/tenants', summary: 'list tenants in id order, a page at a time', query: TenantPageQuery, responses: { 200: jsonResponse(TenantPage, 'one page; next_cursor when more follow') }, errors: [400] })),
  createTenant: operatorOnly(route({ method: 'post', path: '/v1/tenants', summary: 'create a tenant (feeds listed, or from a tier)', body: { schema: CreateTenant }, responses: { 201: jsonResponse(Tenant, 'created') }, errors: [400, 404, 409, 415] })),
  getTenant: operatorOnly(route({ method: 'get', path: '/v1/tenants/{tenant}', summary: 'get a tenant', params: TenantPath, responses: { 200: jsonResponse(Tenant, 'the tenant') }, errors: [400, 404] })),
  updateTenant: operatorOnly(route({ method: 'patch', path: '/v1/tenants/{tenant}', summary: 'rename a tenant', params: TenantPath, body: { schema: UpdateTenant }, responses: { 200: jsonResponse(Tenant, 'updated') }, errors: [400, 404, 409, 415] })),
  deleteTenant: operatorOnly(route({ method: 'delete', path: '/v1/tenants/{tenant}', summary: 'delete a suspended tenant, its users and their credentials (tenant.removed)', description: 'Refused with 409 while the tenant is active: suspend it first.', params: TenantPath, responses: { 204: noBody('deleted') }, errors: [400, 404, 409] })),
  suspendTenant: operatorOnly(route({ method: 'post', path: '/v1/tenants/{tenant}/suspend', summary: 'suspend: every session and SAS key of the tenant is revoked within seconds (tenant.suspended)', params: TenantPath, responses: { 200: jsonResponse(Tenant, 'suspended') }, errors: [400, 404] })),
  resumeTenant: operatorOnly(route({ method: 'post', path: '/v1/tenants/{tenant}/resume', summary: 'resume: logins work again', params: TenantPath, responses: { 200: jsonResponse(Tenant, 'active') }, errors: [400, 404] })),
  setTenantTier: operatorOnly(route({ method: 'put', path: '/v1/tenants/{tenant}/tier', summary: 'put the tenant on a product tier: its feeds become the tier’s (feeds left out: feed.removed)', params: TenantPath, body: { schema: SetTenantTier }, responses: { 200: jsonResponse(Tenant, 'the tenant on its tier') }, errors: [400, 404, 409, 415] })),
  listUsers: operatorOnly(route({ method: 'get', path: '/v1/tenants/{tenant}/users', summary: 'list the tenant’s users', params: TenantPath, responses: { 200: jsonResponse(UserList, 'the users') }, errors: [400, 404] })),
  createUser: operatorOnly(route({ method: 'post', path: '/v1/tenants/{tenant}/users', summary: 'create a user (credentials registered at the IdP; without a password, log in with a registered key)', params: TenantPath, body: { schema: CreateUser }, responses: { 201: jsonResponse(User, 'created') }, errors: [400, 404, 409, 415] })),
  getUser: operatorOnly(route({ method: 'get', path: '/v1/tenants/{tenant}/users/{user}', summary: 'get a user', params: UserPath, responses: { 200: jsonResponse(User, 'the user') }, errors: [400, 404] })),
  updateUser: operatorOnly(route({ method: 'patch', path: '/v1/tenants/{tenant}/users/{user}', summary: 'change a user’s email, roles and/or products (removed roles: role.removed; removed products: products.changed)', params: UserPath, body: { schema: UpdateUser }, responses: { 200: jsonResponse(User, 'updated') }, errors: [400, 404, 409, 415] })),
  deleteUser: operatorOnly(route({ method: 'delete', path: '/v1/tenants/{tenant}/users/{user}', summary: 'delete a user and their credentials (user.removed)', params: UserPath, responses: { 204: noBody('deleted') }, errors: [400, 404] })),
  setRoles: operatorOnly(route({ method: 'put', path: '/v1/tenants/{tenant}/users/{user}/roles', summary: 'set a user’s roles (removed roles: role.removed)', params: UserPath, body: { schema: UpdateRoles }, responses: { 200: jsonResponse(User, 'updated') }, errors: [400, 404, 409, 415] })),
  setPassword: operatorOnly(route({ method: 'put', path: '/v1/tenants/{tenant}/users/{user}/password', summary: 'set or reset a user’s password; ends their sessions and SAS keys (credentials.changed)', params: UserPath, body: { schema: SetPassword }, responses: { 204: noBody('set') }, errors: [400, 404, 415] })),
  registerKey: operatorOnly(route({ method: 'put', path: '/v1/tenants/{tenant}/users/{user}/keys/{kid}', summary: 'register a public key the user’s agent signs RFC 7523 client assertions with', params: KeyPath, body: { schema: ClientKeyRegistration }, responses: { 200: jsonResponse(RegisteredClientKey, 'replaced'), 201: jsonResponse(RegisteredClientKey, 'registered') }, errors: [400, 404, 409, 415] })),
  removeKey: operatorOnly(route({ method: 'delete', path: '/v1/tenants/{tenant}/users/{user}/keys/{kid}', summary: 'remove a registered public key', params: KeyPath, responses: { 204: noBody('removed') }, errors: [400, 404] })),
  listFeeds: operatorOnly(route({ method: 'get', path: '/v1/tenants/{tenant}/feeds', summary: 'the tenant’s feeds with their subscriptions', params: TenantPath, responses: { 200: jsonResponse(TenantFeedList, 'the feeds') }, errors: [400, 404] })),
  grantFeed: operatorOnly(route({ method: 'put', path: '/v1/tenants/{tenant}/feeds/{feed}', summary: 'grant a feed', params: FeedPath, responses: { 200: jsonResponse(Tenant, 'the tenant with the feed') }, errors: [400, 404, 409] })),
  removeFeed: operatorOnly(route({ method: 'delete', path: '/v1/tenants/{tenant}/feeds/{feed}', summary: 'remove a feed (feed.removed) and its subscriptions; idempotent', params: FeedPath, responses: { 204: noBody('removed') }, errors: [400, 404, 409] })),
  listSubscriptions: operatorOnly(route({ method: 'get', path: '/v1/tenants/{tenant}/feeds/{feed}/subscriptions', summary: 'the feed’s named subscriptions', params: FeedPath, responses: { 200: jsonResponse(SubscriptionList, 'the subscriptions') }, errors: [400, 404] })),
  createSubscription: operatorOnly(route({ method: 'post', path: '/v1/tenants/{tenant}/feeds/{feed}/subscriptions/{name}', summary: 'list a named subscription (inventory: only listed subscriptions can be received from); the topic service declares its queues first, so it holds every batch published from the moment it is listed', description: 'Refused with 409 subscription_limit_reached when the feed already lists the most subscriptions a feed may have, and with 503 (nothing listed) when the topic service cannot declare the queues; creating it again declares them again. With `start_at` (not in the future), the batches the feed retained since then are replayed into it as well (the replay is started before the answer and runs on; a `start_at` older than the retention replays what is kept).', params: SubscriptionPath, body: { schema: CreateSubscription.optional(), required: false }, responses: { 200: jsonResponse(Subscription, 'listed already'), 201: jsonResponse(Subscription, 'listed') }, errors: [400, 404, 409, 503] })),
  resubmitDeadLetters: operatorOnly(
    route({
      method: 'post',
      path: '/v1/tenants/{tenant}/feeds/{feed}/subscriptions/{name}/deadletters/resubmit',
      summary: 'resubmit up to `max` (default 100) of the subscription’s dead letters, oldest first, to the subscription (`default` too); recorded as deadletters.resubmitted',
      description: 'The topic service moves them (delivered again from delivery count 1, without their dead-letter reason). 404 for a tenant, feed or subscription that does not exist, 503 when the topic service cannot be reached.',
      params: SubscriptionPath,
      body: { schema: ResubmitDeadLetters },
      responses: { 200: jsonResponse(ResubmittedDeadLetters, 'how many were resubmitted') },
      errors: [400, 404, 415, 503],
    }),
  ),
  replaySubscription: operatorOnly(
    route({
      method: 'post',
      path: '/v1/tenants/{tenant}/feeds/{feed}/subscriptions/{name}/replays',
      summary: 'replay the feed’s retained batches into the subscription (`default` too), from a time or a stream offset: 202 with the replay’s status; recorded as replay.requested',
      description: 'The topic service copies them in the background (see its replay route: retention, `interrupted` with `last_offset`, at most a few at once: 429). 404 for a tenant, feed or subscription that does not exist, 503 when the topic service cannot be reached.',
      params: SubscriptionPath,
      body: { schema: ReplayRequest },
      responses: { 202: jsonResponse(ReplayStatus, 'started: the status') },
      errors: [400, 404, 415, 429, 503],
    }),
  ),
  replayStatus: operatorOnly(
    route({
      method: 'get',
      path: '/v1/tenants/{tenant}/feeds/{feed}/subscriptions/{name}/replays/{replayId}',
      summary: 'the status of a replay into the subscription; kept for 7 days',
      params: SubscriptionPath.extend({ replayId: ReplayId }),
      responses: { 200: jsonResponse(ReplayStatus, 'the replay as it goes') },
      errors: [400, 404, 503],
    }),
  ),
  deleteSubscription: operatorOnly(route({ method: 'delete', path: '/v1/tenants/{tenant}/feeds/{feed}/subscriptions/{name}', summary: 'drop a subscription from the inventory and delete its queues (and what they hold); idempotent', description: 'Answers 503 when the queues cannot be deleted right now; deleting again finishes the job.', params: SubscriptionPath, responses: { 204: noBody('dropped') }, errors: [400, 404, 503] })),
  listTiers: operatorOnly(route({ method: 'get', path: '/v1/tiers', summary: 'list product tiers', responses: { 200: jsonResponse(TierList, 'the tiers') } })),
  getTier: operatorOnly(route({ method: 'get', path: '/v1/tiers/{tier}', summary: 'get a product tier', params: TierPath, responses: { 200: jsonResponse(Tier, 'the tier') }, errors: [400, 404] })),
  putTier: operatorOnly(route({ method: 'put', path: '/v1/tiers/{tier}', summary: 'create or replace a product tier (its feeds, and the products and versions its downloaders may download); every tenant on it follows (feeds left out: feed.removed; products left out or with other versions: products.changed)', params: TierPath, body: { schema: PutTier }, responses: { 200: jsonResponse(Tier, 'replaced'), 201: jsonResponse(Tier, 'created') }, errors: [400, 409, 415] })),
  listRoles: operatorOnly(route({ method: 'get', path: '/v1/roles', summary: 'the fixed role set', responses: { 200: jsonResponse(RoleList, 'the roles and what each allows') } })),
  consoleRedirect: route({ method: 'get', path: '/console', summary: 'the operator console: redirects to /console/', responses: { 301: noBody('Location: /console/') } }),
  consolePage: route({ method: 'get', path: '/console/', summary: 'the operator console page (strict Content-Security-Policy, X-Frame-Options DENY)', responses: { 200: { description: 'HTML', schema: z.string(), type: 'text/html' } } }),
  consoleScript: route({ method: 'get', path: '/console/console.js', summary: 'the console’s script', responses: { 200: { description: 'an ES module', schema: z.string(), type: 'text/javascript' } } }),
  consoleStyle: route({ method: 'get', path: '/console/console.css', summary: 'the console’s style sheet', responses: { 200: { description: 'CSS', schema: z.string(), type: 'text/css' } } }),
  consoleSignIn: route({ method: 'post', path: '/console/session', summary: 'console sign-in: PAS password grant with scope=operator, made by this service (the page talks to its own origin only)', body: { schema: ConsoleSignIn }, responses: { 200: jsonResponse(TokenResponse, 'PAS’s token response (Cache-Control: no-store)') }, errors: [400, 401, 403, 415, 429, 503] }),
  consoleRefresh: route({ method: 'post', path: '/console/session/refresh', summary: 'console: PAS refresh grant (the refresh token rotates)', body: { schema: ConsoleRefreshToken }, responses: { 200: jsonResponse(TokenResponse, 'the new pair (Cache-Control: no-store)') }, errors: [400, 401, 403, 415, 503] }),
  consoleRevoke: route({ method: 'post', path: '/console/session/revoke', summary: 'console sign-out: RFC 7009 revocation of the refresh token, which ends its whole family', body: { schema: ConsoleRefreshToken }, responses: { 204: noBody('revoked (or nothing to revoke)') }, errors: [400, 415, 503] }),
  consoleRotateSasKey: operatorOnly(route({ method: 'post', path: '/console/tenants/{tenant}/sas-keys/rotate', summary: 'console: rotate a tenant’s SAS key at PAC with the caller’s operator access token (forwarded; its aud names PAC)', params: TenantPath, body: { schema: SasKeyRotationRequest }, responses: { 200: jsonResponse(SasKeyRotation, 'PAC’s answer (no key material)') }, errors: [400, 404, 409, 415] })),
  consoleDownloads: operatorOnly(route({ method: 'get', path: '/console/tenants/{tenant}/downloads', summary: 'console: the tenant’s release downloads (who, which file, bytes, range) from the releases service, asked with the caller’s operator access token (forwarded; its aud names the releases service)', params: TenantPath, responses: { 200: jsonResponse(DownloadReport, 'the releases service’s answer') }, errors: [400, 404] })),
  consoleAuditEvents: operatorOnly(route({ method: 'get', path: '/console/tenants/{tenant}/audit-events', summary: 'console: the tenant’s newest audit events from the audit service, asked with the caller’s operator access token (forwarded; its aud names the audit service)', params: TenantPath, query: ConsoleAuditQuery, responses: { 200: jsonResponse(AuditPage, 'the audit service’s answer') }, errors: [400, 404] })),
  crmWebhook: route({ method: 'post', path: '/v1/crm/webhook', summary: 'CRM contract sync: customer → tenant, tier → feeds, contacts → users, cancelled / suspended → suspended', description: 'Signed with X-Keyway-Timestamp (unix seconds) and X-Keyway-Signature over the timestamp, the delivery id and the body; the delivery id is X-Keyway-Delivery or the body’s id. The same delivery again answers 200 with duplicate: true and changes nothing; a delivery signed before the newest one applied for its customer answers 200 with superseded: true and changes nothing; another body under a seen id is 409. 404 when CRM sync is not configured.', security: ['crmSignature'], body: { schema: CrmDelivery }, responses: { 200: jsonResponse(CrmDeliveryResult, 'applied, or a duplicate') }, errors: [400, 401, 404, 409, 413, 415] }),
};

export const entitlementPaths = pathsOf(entitlementRoutes);

export const entitlementApi = openApiDocument({ title: 'Keyway entitlement service', description: 'Tenants, users, roles, feeds, subscriptions and product tiers; answers authorization questions for PAS and PAC. Changes that take access away are announced as change events, which PAS and PAC follow to revoke sessions and SAS keys within seconds. The admin API answers the operator client certificate or an operator access token (PAS, scope=operator).' }, entitlementPaths);
