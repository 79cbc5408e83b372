import { z } from 'zod';
import { AuthorizeDecision, Tenant, User, type AuthorizeRequest, type CreateUser } from '@keyway/contracts';
import { call, createHttp, type ClientOptions } from './http.ts';

export function entitlementClient(options: ClientOptions) {
  const http = createHttp(options);
  const t = (tenant: string) => `/v1/tenants/${encodeURIComponent(tenant)}`;
  return {
    authorize: (request: AuthorizeRequest) => call(() => http.post('/v1/authorize', request), AuthorizeDecision, 'entitlement'),
    createTenant: (tenant: { id: string; name: string; feeds?: string[] }) => call(() => http.post('/v1/tenants', tenant), Tenant, 'entitlement'),
    getTenant: (tenant: string) => call(() => http.get(t(tenant)), Tenant, 'entitlement'),
    grantFeed: (tenant: string, feed: string) => call(() => http.put(`${t(tenant)}/feeds/${encodeURIComponent(feed)}`), Tenant, 'entitlement'),
    createUser: (tenant: string, user: CreateUser) => call(() => http.post(`${t(tenant)}/users`, user), User, 'entitlement'),
    listUsers: (tenant: string) => call(() => http.get(`${t(tenant)}/users`), z.object({ users: z.array(User) }), 'entitlement'),
  };
}
export type EntitlementClient = ReturnType<typeof entitlementClient>;
