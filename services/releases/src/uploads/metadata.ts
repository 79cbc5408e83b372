import { z } from 'zod';
import { FileName, ProductId, Sha256Hex, VersionName } from '@keyway/contracts';
import { InvalidRequest } from '@keyway/kit';

/** What an upload is announced as (tus Upload-Metadata): a version's file (publishers), or one for the tenant's location (uploaders). */
export const UploadAnnouncement = z.strictObject({
  product: ProductId,
  filename: FileName,
  sha256: Sha256Hex,
  version: VersionName.optional(),
});
export type UploadAnnouncement = z.infer<typeof UploadAnnouncement>;

/**
 * tus 1.0 Upload-Metadata: comma-separated `key base64value` pairs (the value may be absent). Keys are
 * unique and values UTF-8; anything else is refused here, before tus sees the request.
 */
export function parseUploadMetadata(header: string | undefined): UploadAnnouncement {
  if (header === undefined || header.trim() === '') throw new InvalidRequest('Upload-Metadata is required: product, filename, sha256 and (for a version) version');
  const pairs: Record<string, string> = {};
  for (const pair of header.split(',')) {
    const [key, value, extra] = pair.trim().split(' ');
    if (!key || extra !== undefined || !/^[A-Za-z0-9_-]{1,64}$/.test(key) || (value !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(value))) {
      throw new InvalidRequest('Upload-Metadata: expected comma-separated "key base64value" pairs');
    }
    if (Object.hasOwn(pairs, key)) throw new InvalidRequest(`Upload-Metadata: ${key} appears twice`);
    pairs[key] = Buffer.from(value ?? '', 'base64').toString('utf8');
  }
  const parsed = UploadAnnouncement.safeParse(pairs);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new InvalidRequest(`Upload-Metadata.${first?.path.join('.') ?? ''}: ${first?.message ?? 'invalid'}`);
  }
  return parsed.data;
}
