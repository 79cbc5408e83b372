import { z } from 'zod';

/** Names that end up in URLs, Redis keys and AMQP routing keys: lowercase, digits, dashes. */
export const Slug = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'must be 1-63 lowercase letters, digits or dashes');
export const TenantId = Slug.describe('tenant id');
export const FeedName = Slug.describe('feed (topic) name');
export const SubscriptionName = Slug.describe('subscription name');
export const Email = z.string().trim().toLowerCase().email().max(254);
export const Rights = z.enum(['listen', 'send', 'listen-send']);
export type Rights = z.infer<typeof Rights>;
export const Role = z.enum(['full-control', 'read-only', 'producer', 'operator']);
export type Role = z.infer<typeof Role>;

export const ErrorBody = z.object({ error: z.string(), error_description: z.string().optional() });
export type ErrorBody = z.infer<typeof ErrorBody>;

/** The resource URI of a tenant topic, as SAS keys name it. */
export function topicResource(topicBaseUrl: string, tenant: string, topic: string): string {
  return `${topicBaseUrl.replace(/\/+$/, '')}/tenants/${tenant}/topics/${topic}`;
}

/** The tenant a topic resource URI of this base names (compared case-insensitively, as Azure compares them); undefined for any other URI. */
export function tenantOfTopicResource(topicBaseUrl: string, resource: string): string | undefined {
  const base = topicBaseUrl.replace(/\/+$/, '').toLowerCase();
  const lower = resource.toLowerCase();
  if (!lower.startsWith(base)) return undefined;
  const tenant = /^\/tenants\/([^/]+)\/topics\/[^/]+$/.exec(lower.slice(base.length))?.[1];
  return tenant !== undefined && TenantId.safeParse(tenant).success ? tenant : undefined;
}

/** The scope an operator login asks for (alone): an access token for the admin APIs, no feeds. */
export const OPERATOR_SCOPE = 'operator';

/** Scope tokens naming feeds: "feed:<name>" (space separated, RFC 6749 §3.3). */
export const feedScope = (feed: string) => `feed:${feed}`;
export function feedsFromScope(scope: string): string[] {
  return scope
    .split(' ')
    .filter((s) => s.startsWith('feed:'))
    .map((s) => s.slice('feed:'.length));
}
