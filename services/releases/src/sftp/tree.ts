import { posix } from 'node:path';
import { FileName, ProductId, VersionName } from '@keyway/contracts';

/** The folders beside a product's published versions: drafts and withdrawn ones (publishers), the tenant's upload location. */
export const DRAFTS = 'drafts';
export const WITHDRAWN = 'withdrawn';
export const UPLOAD = 'upload';

/** Where a version is shown: published ones at the product's top, the others in their folder. */
export type Shelf = 'published' | typeof DRAFTS | typeof WITHDRAWN;

/**
 * A place in the SFTP tree, which is a view of the catalog (nothing is a real directory):
 *   /<product>/<version>/<file>               published versions (downloaders and publishers)
 *   /<product>/drafts/<version>/<file>         publishers: mkdir a draft, put files, rename it up to publish
 *   /<product>/withdrawn/<version>/<file>      publishers: a published version renamed here is withdrawn
 *   /<product>/upload/<file>                   the caller's tenant's upload location (uploaders)
 */
export type Place =
  | { kind: 'root' }
  | { kind: 'product'; product: string }
  | { kind: 'shelf'; product: string; shelf: typeof DRAFTS | typeof WITHDRAWN }
  | { kind: 'version'; product: string; version: string; shelf: Shelf }
  | { kind: 'file'; product: string; version: string; shelf: Shelf; name: string }
  | { kind: 'location'; product: string }
  | { kind: 'location_file'; product: string; name: string };

/** The absolute form of a client's path ("." and relative paths start at the root; ".." stops there). */
export const absolute = (path: string): string => posix.resolve('/', path);

const valid = (schema: { safeParse(value: unknown): { success: boolean } }, value: string | undefined): value is string => value !== undefined && schema.safeParse(value).success;

/** The place a path names, or undefined when it names nothing the tree can hold. */
export function placeOf(path: string): Place | undefined {
  const parts = absolute(path).split('/').filter(Boolean);
  if (parts.length === 0) return { kind: 'root' };
  const [product, second, third, fourth, ...rest] = parts;
  if (!valid(ProductId, product) || rest.length > 0) return undefined;
  if (second === undefined) return { kind: 'product', product };
  if (second === UPLOAD) {
    if (third === undefined) return { kind: 'location', product };
    return fourth === undefined && valid(FileName, third) ? { kind: 'location_file', product, name: third } : undefined;
  }
  if (second === DRAFTS || second === WITHDRAWN) {
    if (third === undefined) return { kind: 'shelf', product, shelf: second };
    if (!valid(VersionName, third)) return undefined;
    if (fourth === undefined) return { kind: 'version', product, version: third, shelf: second };
    return valid(FileName, fourth) ? { kind: 'file', product, version: third, shelf: second, name: fourth } : undefined;
  }
  if (!valid(VersionName, second) || fourth !== undefined) return undefined;
  if (third === undefined) return { kind: 'version', product, version: second, shelf: 'published' };
  return valid(FileName, third) ? { kind: 'file', product, version: second, shelf: 'published', name: third } : undefined;
}

/** The shelf a version's state puts it on. */
export const shelfOf = (state: string): Shelf => (state === 'published' ? 'published' : state === 'withdrawn' ? WITHDRAWN : DRAFTS);
