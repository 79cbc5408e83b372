import semver from 'semver';
import { z } from 'zod';

/** Names that end up in URLs, Redis keys and AMQP routing keys: lowercase, digits, dashes. */
export const Slug = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'must be 1-63 lowercase letters, digits or dashes');
export const TenantId = Slug.describe('tenant id');
export const FeedName = Slug.describe('feed (topic) name');
export const SubscriptionName = Slug.describe('subscription name');
/** A product of the releases service; its name is a path segment of its persistent links (/products/{product}). */
export const ProductId = Slug.describe('product id');
export type ProductId = z.infer<typeof ProductId>;
/**
 * A release version: strict semver as written (semver.valid answers it unchanged: no "v" prefix, no
 * spaces, no build metadata, which semver ignores in ordering, so 1.0.0+a and 1.0.0+b would be one).
 */
export const VersionName = z
  .string()
  .max(64)
  .refine((v) => semver.valid(v) === v, 'must be a semver version such as 1.2.3 or 2.0.0-rc.1')
  .describe('release version (semver)');
export type VersionName = z.infer<typeof VersionName>;
/** The versions of a product a tier gives (semver range syntax, e.g. ">=1.0.0 <3.0.0"); "*" = every version. */
export const VersionRange = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .refine((range) => semver.validRange(range) !== null, 'must be a semver range such as >=1.0.0 or ^2.1.0')
  .default('*')
  .describe('semver range of versions');
export type VersionRange = z.infer<typeof VersionRange>;
/**
 * Characters a name set by a customer (a CRM customer name becomes a tenant name) must not carry to an
 * operator's terminal or screen: C0 and C1 controls and DEL (ESC starts terminal escape sequences,
 * OSC 52 writes the clipboard), the line and paragraph separators, and the bidirectional embeddings,
 * overrides and isolates (Unicode TR9; "Trojan Source", CVE-2021-42574). The implicit marks LRM,
 * RLM and ALM stay allowed: right-to-left names may need them and they reorder nothing.
 */
export const UNSAFE_TEXT = /[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069]/u;
export const SAFE_TEXT = new RegExp(`^[^${UNSAFE_TEXT.source.slice(1, -1)}]*$`, 'u');
export const SAFE_TEXT_MESSAGE = 'must not contain control or bidirectional formatting characters';
/** Text an operator will read: refused at the edge when it holds an UNSAFE_TEXT character. */
export const SafeText = (max: number, min = 1) => z.string().min(min).max(max).regex(SAFE_TEXT, SAFE_TEXT_MESSAGE);
export const Email = z.string().trim().toLowerCase().email().max(254);
export const Rights = z.enum(['listen', 'send', 'listen-send']);
export type Rights = z.infer<typeof Rights>;
/** The fixed roles; what each grants is the role table (roles.ts, design.md "Roles"). */
export const Role = z.enum(['full-control', 'read-only', 'producer', 'downloader', 'uploader', 'publisher', 'operator']);
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

/** The scope a releases login asks for (alone): an access token for the releases service, with the `releases` claim. */
export const RELEASES_SCOPE = 'releases';

/** Scope tokens naming feeds: "feed:<name>" (space separated, RFC 6749 §3.3). */
export const feedScope = (feed: string) => `feed:${feed}`;
export function feedsFromScope(scope: string): string[] {
  return scope
    .split(' ')
    .filter((s) => s.startsWith('feed:'))
    .map((s) => s.slice('feed:'.length));
}
