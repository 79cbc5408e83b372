import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * RELEASES_STORAGE_DIR's folders, one filesystem so every move is a rename: uploads in progress (tus),
 * files received whole and waiting for their verdict (staged), infected or unscannable ones
 * (quarantine, never served), and the clean blobs (sha256/, the BlobStore).
 */
export interface StorageLayout {
  root: string;
  uploads: string;
  quarantine: string;
  /** where a received file waits for the scanner */
  staged(file: { stagedAs?: string | undefined }): string;
  stagedDir: string;
}

export async function storageLayout(root: string): Promise<StorageLayout> {
  const layout = {
    root,
    uploads: join(root, 'uploads'),
    quarantine: join(root, 'quarantine'),
    stagedDir: join(root, 'staged'),
    staged: (file: { stagedAs?: string | undefined }) => join(root, 'staged', file.stagedAs ?? 'none'),
  };
  // quarantine is for whoever investigates, not for the world
  for (const dir of [layout.uploads, layout.stagedDir]) await mkdir(dir, { recursive: true });
  await mkdir(layout.quarantine, { recursive: true, mode: 0o700 });
  return layout;
}
