import { z } from 'zod';
import { Email, FeedName, Role, TenantId } from './common.ts';
import { Password } from './idp.ts';

export const AuthorizeRequest = z.object({
  sub: z.string().min(1),
  tenant: TenantId,
  /** feeds asked for; empty = every feed the tenant has */
  feeds: z.array(FeedName).max(50).default([]),
  role: Role,
});
export type AuthorizeRequest = z.input<typeof AuthorizeRequest>;

export const DenialReason = z.enum(['tenant_unknown', 'tenant_suspended', 'user_unknown', 'role_missing', 'feed_not_entitled', 'no_feeds']);
export type DenialReason = z.infer<typeof DenialReason>;

export const AuthorizeDecision = z.discriminatedUnion('allow', [
  z.object({ allow: z.literal(true), feeds: z.array(FeedName), roles: z.array(Role) }),
  z.object({ allow: z.literal(false), reason: DenialReason }),
]);
export type AuthorizeDecision = z.infer<typeof AuthorizeDecision>;

export const Tenant = z.object({
  id: TenantId,
  name: z.string().min(1).max(200),
  status: z.enum(['active', 'suspended']),
  feeds: z.array(FeedName),
  createdAt: z.string(),
});
export type Tenant = z.infer<typeof Tenant>;

export const CreateTenant = z.object({ id: TenantId, name: z.string().min(1).max(200), feeds: z.array(FeedName).max(100).default([]) });

export const User = z.object({ id: z.string(), tenant: TenantId, email: Email, roles: z.array(Role), createdAt: z.string() });
export type User = z.infer<typeof User>;

export const CreateUser = z.object({ email: Email, password: Password.optional(), roles: z.array(Role).min(1).max(10) });
export type CreateUser = z.input<typeof CreateUser>;
