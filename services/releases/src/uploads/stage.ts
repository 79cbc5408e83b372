import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { mergeFields, type AuditFields, type AuditLog } from '@keyway/audit';
import type { Catalog, FileScope } from '../catalog/catalog.ts';
import type { ScanWorker } from '../scan/scan-worker.ts';
import { moveFile } from '../storage/blob-store.ts';
import type { StorageLayout } from '../storage/layout.ts';

export interface StageDeps {
  catalog: Catalog;
  layout: StorageLayout;
  audit: AuditLog;
  scans: ScanWorker;
}

/** A file received whole (by tus or SFTP), where it lies, and what it was sent as. */
export interface ReceivedFile {
  /** its bytes on disk, under the layout's uploads/ (moved away or removed here) */
  path: string;
  /** names the staged file: unique per upload */
  uploadId: string;
  scope: FileScope;
  filename: string;
  sub: string;
  tenant: string;
  length: number;
  /** the SHA-256 the sender stated (tus); SFTP states none */
  statedSha256?: string;
  /** the request's audit fields (source, transport) */
  fields: AuditFields;
}

/** Why a received file is refused; the file is removed and nothing is created. */
export class StageRefused extends Error {
  constructor(
    readonly reason: 'hash_mismatch' | 'version_closed',
    message: string,
  ) {
    super(message);
  }
}

/**
 * The one path from "every byte is in" to "waiting for the scanner", whichever way the file came:
 * hashed (streamed, constant memory) and checked against the stated hash, refused when its version
 * was published meanwhile, moved to staged/, recorded (release.uploaded) and queued for clamd. Nobody
 * can download it before the scanner says clean.
 */
export async function stageReceived(deps: StageDeps, file: ReceivedFile, now: Date): Promise<{ sha256: string }> {
  const { audit } = deps;
  const fields = mergeFields(file.fields, { subject: file.sub, tenant: file.tenant });
  const detail = {
    product: file.scope.product,
    ...(file.scope.kind === 'version' ? { version: file.scope.version } : { location: file.tenant }),
    file: file.filename,
    bytes: String(file.length),
  };
  const hash = createHash('sha256');
  await pipeline(createReadStream(file.path, { highWaterMark: 1024 * 1024 }), hash);
  const sha256 = hash.digest('hex');
  if (file.statedSha256 !== undefined && sha256 !== file.statedSha256) {
    await rm(file.path, { force: true });
    // audit actions are noun.verb in letters: "hash", not "sha256"
    await audit.record({ ...fields, action: 'release.hash_mismatch', outcome: 'denied', reason: 'hash_mismatch', detail: { ...detail, stated: file.statedSha256, received: sha256 } });
    throw new StageRefused('hash_mismatch', `the file's SHA-256 is ${sha256}, not the ${file.statedSha256} stated: refused, upload it again`);
  }
  const { scope } = file;
  // a version's file joins it only while it is a draft, and no publish runs between the check and the join
  if (scope.kind === 'version') return deps.catalog.whileVersionHeld(scope.product, scope.version, () => stageIntoDraft(deps, file, scope.version, sha256, fields, detail, now));
  return stage(deps, file, sha256, fields, detail, now);
}

async function stageIntoDraft(deps: StageDeps, file: ReceivedFile, versionName: string, sha256: string, fields: AuditFields, detail: Record<string, string>, now: Date) {
  // published meanwhile (the upload began while it was a draft): its files do not change under customers
  const version = await deps.catalog.version(file.scope.product, versionName);
  if (version?.state !== 'draft') {
    await rm(file.path, { force: true });
    throw new StageRefused('version_closed', `${file.scope.product} ${versionName} is ${version?.state ?? 'gone'}: its files cannot change`);
  }
  return stage(deps, file, sha256, fields, detail, now);
}

async function stage(deps: StageDeps, file: ReceivedFile, sha256: string, fields: AuditFields, detail: Record<string, string>, now: Date): Promise<{ sha256: string }> {
  const { catalog, layout, audit, scans } = deps;
  const stagedAs = `${file.uploadId}-${sha256}`;
  await moveFile(file.path, join(layout.stagedDir, stagedAs));
  await audit.record({ ...fields, action: 'release.uploaded', outcome: 'success', detail: { ...detail, sha256 } });
  await catalog.putFile(file.scope, {
    name: file.filename,
    size: file.length,
    sha256,
    state: 'scanning',
    uploadedBy: file.sub,
    uploadedAt: now.toISOString(),
    tenant: file.tenant,
    stagedAs,
  });
  await catalog.queueScan(file.scope, file.filename);
  scans.kick();
  return { sha256 };
}
