import semver from 'semver';
import { z } from 'zod';
import { Slug, TenantId } from './common.ts';

/*
 * The releases service (issue 13): products, versions, files; who may do what with them. The rights
 * types mirror what the entitlement service answers for `access: 'releases'` (helper A's side of
 * issue 13): this file holds copies the lead reconciles with A's at merge.
 */

export const ProductName = Slug.describe('product name');
/** A release version: a semver version (2.4.1, 3.0.0-rc.1), so a tier's range can bound it. */
export const VersionName = z
  .string()
  .max(64)
  .refine((v) => semver.valid(v) === v, 'must be a semantic version such as 2.4.1 (no build metadata: it does not order versions)')
  .describe('semantic version');
/** A file name as it appears in a link: no path, no leading dot, no spaces or controls. */
export const FileName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$/, 'must be 1-200 letters, digits or . _ + - (not starting with . _ + -)')
  .describe('file name');
/** Lowercase hex SHA-256 of a file's bytes: its strong ETag and its name on disk. */
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex SHA-256');

export const ReleaseRight = z.enum(['download', 'upload', 'publish', 'withdraw']);
export type ReleaseRight = z.infer<typeof ReleaseRight>;

/** Per product, the rights a user holds and the versions (a semver range) download reaches. */
export const ReleaseRights = z.record(ProductName, z.object({ rights: z.array(ReleaseRight), versions: z.string().max(256) }));
export type ReleaseRights = z.infer<typeof ReleaseRights>;

/** The entitlement service's answer for `access: 'releases'`, read per request by the releases service. */
export const ReleaseAuthorizeRequest = z.object({ sub: z.string().min(1), tenant: TenantId, access: z.literal('releases') });
export const ReleaseAuthorizeDecision = z.discriminatedUnion('allow', [
  // releases absent (an answer for another access): no release rights
  z.object({ allow: z.literal(true), roles: z.array(z.string()), releases: ReleaseRights.default({}) }),
  z.object({ allow: z.literal(false), reason: z.string() }),
]);
export type ReleaseAuthorizeDecision = z.infer<typeof ReleaseAuthorizeDecision>;

/**
 * A published pre-release is within a range when its numbers are: publishing it is the vendor's
 * decision to release it (as helper A's roles.ts has it: semver's default would hide 2.0.0-rc.1 even from "*").
 */
const RANGE_OPTIONS = { includePrerelease: true } as const;

/**
 * Whether `rights` allow `right` on `product`; for download, also on `version` (inside the product's
 * range). A version that is not strict semver, or a malformed range, allows nothing.
 */
export function mayOnRelease(rights: ReleaseRights, product: string, right: ReleaseRight, version?: string): boolean {
  const grant = Object.hasOwn(rights, product) ? rights[product] : undefined;
  if (!grant?.rights.includes(right)) return false;
  if (version === undefined) return true;
  if (semver.valid(version) !== version) return false;
  return right !== 'download' || (semver.validRange(grant.versions, RANGE_OPTIONS) !== null && semver.satisfies(version, grant.versions, RANGE_OPTIONS));
}

export const VersionState = z.enum(['draft', 'published', 'withdrawn']);
export type VersionState = z.infer<typeof VersionState>;
/** staged (received, hashed) → scanning → clean | infected (quarantined) | scan_pending (scanner down: retried) | too_large (above the scanner's limit: never published) */
export const FileState = z.enum(['staged', 'scanning', 'clean', 'infected', 'scan_pending', 'too_large']);
export type FileState = z.infer<typeof FileState>;

export const ReleaseFile = z.object({
  name: FileName,
  size: z.number().int().min(0),
  sha256: Sha256Hex,
  state: FileState,
  uploadedBy: z.string(),
  uploadedAt: z.string(),
  /** why a file is not clean (the signature found, the scanner's error) */
  reason: z.string().optional(),
});
export type ReleaseFile = z.infer<typeof ReleaseFile>;

export const ReleaseVersion = z.object({
  product: ProductName,
  version: VersionName,
  state: VersionState,
  createdAt: z.string(),
  createdBy: z.string(),
  publishedAt: z.string().optional(),
  withdrawnAt: z.string().optional(),
});
export type ReleaseVersion = z.infer<typeof ReleaseVersion>;

/** A product as one person sees it: their rights on it and the versions they may see. */
export const ProductDetail = z.object({ product: ProductName, rights: z.array(ReleaseRight), versions: z.array(ReleaseVersion) });
export type ProductDetail = z.infer<typeof ProductDetail>;
export const ProductList = z.object({ products: z.array(ProductDetail) });
export type ProductList = z.infer<typeof ProductList>;
export const VersionDetail = ReleaseVersion.extend({ files: z.array(ReleaseFile) });
export type VersionDetail = z.infer<typeof VersionDetail>;
/** A tenant's upload location of a product: what its uploaders sent. */
export const LocationDetail = z.object({ product: ProductName, tenant: TenantId, files: z.array(ReleaseFile) });
export type LocationDetail = z.infer<typeof LocationDetail>;

export const DownloadReportQuery = z.object({
  tenant: TenantId,
  since: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(500),
});
export type DownloadReportQuery = z.input<typeof DownloadReportQuery>;
const DownloadRecord = z.object({
  time: z.string(),
  subject: z.string().optional(),
  product: z.string(),
  version: z.string(),
  file: z.string(),
  bytes: z.number().int().min(0),
  /** the Range served ("bytes=0-1023"), absent for the whole file */
  range: z.string().optional(),
});
export const DownloadReport = z.object({ tenant: TenantId, downloads: z.array(DownloadRecord) });
export type DownloadReport = z.infer<typeof DownloadReport>;
