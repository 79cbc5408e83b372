import { z } from 'zod';
import { ProductId, TenantId, VersionName } from './common.ts';
import { ReleaseRight } from './roles.ts';

/*
 * The releases service (issue 13): products, versions, files, as its API answers them. Who may do
 * what with them is the role table's (roles.ts: ReleaseRights, mayOnRelease).
 */

/** A file name as it appears in a link: no path, no leading dot, no spaces or controls. */
export const FileName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$/, 'must be 1-200 letters, digits or . _ + - (not starting with . _ + -)')
  .describe('file name');
/** Lowercase hex SHA-256 of a file's bytes: its strong ETag and its name on disk. */
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex SHA-256');

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
  product: ProductId,
  version: VersionName,
  state: VersionState,
  createdAt: z.string(),
  createdBy: z.string(),
  publishedAt: z.string().optional(),
  withdrawnAt: z.string().optional(),
});
export type ReleaseVersion = z.infer<typeof ReleaseVersion>;

/** A product as one person sees it: their rights on it and the versions they may see. */
export const ProductDetail = z.object({ product: ProductId, rights: z.array(ReleaseRight), versions: z.array(ReleaseVersion) });
export type ProductDetail = z.infer<typeof ProductDetail>;
export const ProductList = z.object({ products: z.array(ProductDetail) });
export type ProductList = z.infer<typeof ProductList>;
export const VersionDetail = ReleaseVersion.extend({ files: z.array(ReleaseFile) });
export type VersionDetail = z.infer<typeof VersionDetail>;
/** A tenant's upload location of a product: what its uploaders sent. */
export const LocationDetail = z.object({ product: ProductId, tenant: TenantId, files: z.array(ReleaseFile) });
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
