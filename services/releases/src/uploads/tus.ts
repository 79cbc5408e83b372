import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { audited, mergeFields, requestFields, type AuditLog, type AuditScope } from '@keyway/audit';
import { expressPath, releasesRoutes } from '@keyway/contracts';
import { Conflict, InvalidRequest, NotFound, OAuthError, PayloadTooLarge, type Logger } from '@keyway/kit';
import { CLAMAV_MAX_FILE_BYTES } from '@keyway/scan';
import { FileStore } from '@tus/file-store';
import { EVENTS, Server, type Upload } from '@tus/server';
import type { Request, RequestHandler, Response, Router } from 'express';
import { authorizeRelease } from '../auth/access.ts';
import type { ReleaseAuthorizer } from '../auth/authorizer.ts';
import { type Principal, requirePrincipal } from '../auth/principal.ts';
import type { Catalog, FileScope, UploadRecord } from '../catalog/catalog.ts';
import type { ScanWorker } from '../scan/scan-worker.ts';
import type { StorageLayout } from '../storage/layout.ts';
import { parseUploadMetadata, type UploadAnnouncement } from './metadata.ts';
import { StageRefused, stageReceived } from './stage.ts';

const UPLOADS_PATH = releasesRoutes.createUpload.path;

export interface UploadDeps {
  catalog: Catalog;
  layout: StorageLayout;
  authorizer: ReleaseAuthorizer;
  audit: AuditLog;
  scans: ScanWorker;
  logger: Logger;
}

export interface UploadOptions {
  /** largest Upload-Length accepted */
  maxFileBytes: number;
  /** clamd's StreamMaxLength: a longer file could never be scanned, so it is refused at creation */
  scannableBytes: number;
  /** an upload not finished this long after its creation is deleted, bytes and record */
  uploadExpiryMs: number;
  now?: () => number;
}

/** What the creation check learned, handed to tus's onUploadCreate on the same request object. */
interface Announced {
  principal: Principal;
  scope: FileScope;
  announcement: UploadAnnouncement;
  length: number;
}
const ANNOUNCED = Symbol('releases.upload');
type WithAnnouncement = IncomingMessage & { [ANNOUNCED]?: Announced };

/** tus hands hooks its own Request; the Node request behind it carries what the Express steps learned. */
const nodeRequest = (req: unknown): WithAnnouncement | undefined => (req as { runtime?: { node?: { req?: WithAnnouncement } } }).runtime?.node?.req;

/** tus answers errors as `{ status_code, body }`; ours keep the OAuth JSON shape. */
const tusError = (status: number, error: string, description: string) =>
  Object.assign(new Error(description), { status_code: status, body: JSON.stringify({ error, error_description: description }) });

/** Upload-Length: digits only (tus 1.0 §Upload-Length), at least one byte. */
function uploadLength(req: Request, options: UploadOptions): number {
  const header = req.get('upload-length');
  if (header === undefined) throw new InvalidRequest('Upload-Length is required (deferred lengths are not accepted)');
  if (!/^\d{1,16}$/.test(header) || Number(header) < 1) throw new InvalidRequest('Upload-Length must be a positive integer');
  const length = Number(header);
  if (length > options.maxFileBytes) throw new PayloadTooLarge(`files may be at most ${options.maxFileBytes} bytes`);
  const scannable = Math.min(options.scannableBytes, CLAMAV_MAX_FILE_BYTES);
  if (length > scannable) throw new PayloadTooLarge(`the scanner judges files of at most ${scannable} bytes; a larger one could never be published`);
  return length;
}

/**
 * Resumable uploads, tus 1.0 (@tus/server with the file store) under /v1/uploads. Express steps come
 * first: creation (POST) is authorized from its Upload-Metadata (product, filename, sha256, version
 * for a publisher's version, none for the tenant's upload location); every later request (HEAD,
 * PATCH, DELETE) is authorized again and answers 404 to anyone but the upload's creator. When the last
 * byte is in, the file is hashed (streamed) against the stated SHA-256 and staged for the scanner.
 */
export function uploadRoutes(deps: UploadDeps, options: UploadOptions) {
  const { catalog, layout, authorizer, audit } = deps;
  const now = () => new Date(options.now?.() ?? Date.now());
  const trail = { audit };
  const fieldsOf = (req: Request, principal: Principal) => mergeFields(requestFields(req), { subject: principal.sub, tenant: principal.tenant, tokenId: principal.tokenId });

  /** a version's files come from its publishers; a location's from the tenant's uploaders (publishers may upload there too) */
  const mayUpload = async (scope: AuditScope, principal: Principal, target: FileScope) => {
    await authorizeRelease(authorizer, scope, principal, target.product, target.kind === 'version' ? 'publish' : 'upload');
  };

  const tus = new Server({
    path: UPLOADS_PATH,
    datastore: new FileStore({ directory: layout.uploads, expirationPeriodInMilliseconds: options.uploadExpiryMs }),
    relativeLocation: true,
    maxSize: options.maxFileBytes,
    namingFunction: () => randomUUID().replaceAll('-', ''),
    // the browser pages are same-origin; no other origin gets CORS
    allowedOrigins: [],
    async onUploadCreate(req, upload) {
      const announced = nodeRequest(req)?.[ANNOUNCED];
      if (!announced) throw tusError(400, 'invalid_request', 'the upload was not announced');
      const record: UploadRecord = {
        id: upload.id,
        sub: announced.principal.sub,
        tenant: announced.principal.tenant,
        scope: announced.scope,
        filename: announced.announcement.filename,
        sha256: announced.announcement.sha256,
        length: announced.length,
        createdAt: now().toISOString(),
      };
      await catalog.putUpload(record, options.uploadExpiryMs);
      return {};
    },
    async onUploadFinish(req, upload) {
      const node = nodeRequest(req);
      return finish(node as unknown as Request, upload);
    },
  });
  tus.on(EVENTS.POST_TERMINATE, (_req, _res, id) => {
    void catalog.deleteUpload(id).catch((err: unknown) => deps.logger.warn('release.upload_forget_failed', { err }));
  });

  async function finish(req: Request, upload: Upload) {
    const record = await catalog.upload(upload.id);
    if (!record) throw tusError(404, 'not_found', 'no such upload');
    const path = join(layout.uploads, upload.id);
    try {
      await stageReceived(
        deps,
        {
          path,
          uploadId: record.id,
          scope: record.scope,
          filename: record.filename,
          sub: record.sub,
          tenant: record.tenant,
          length: record.length,
          statedSha256: record.sha256,
          fields: requestFields(req),
        },
        now(),
      );
    } catch (err) {
      // tus 1.0 checksum extension: 460 Checksum Mismatch; the file is refused and nothing is created
      if (err instanceof StageRefused) throw err.reason === 'hash_mismatch' ? tusError(460, 'invalid_request', err.message) : tusError(409, 'conflict', err.message);
      throw err;
    } finally {
      await catalog.deleteUpload(record.id);
      await rm(`${path}.json`, { force: true });
    }
    return { headers: { 'Upload-File-State': 'scanning' } };
  }

  /** POST: the announcement is checked and authorized before tus creates anything */
  const create: RequestHandler = async (req, _res, next) => {
    try {
      const principal = requirePrincipal(req);
      // tus 1.0 §Tus-Resumable: refused before anything is started or recorded
      if (req.get('tus-resumable') !== '1.0.0') throw new OAuthError(412, 'invalid_request', 'Tus-Resumable: 1.0.0 is required (the tus protocol, tus.io)');
      await audited(trail, { action: 'release.upload_started', fields: fieldsOf(req, principal), refusal: false }, async (scope) => {
        const announcement = parseUploadMetadata(req.get('upload-metadata'));
        const length = uploadLength(req, options);
        const target: FileScope = announcement.version
          ? { kind: 'version', product: announcement.product, version: announcement.version }
          : { kind: 'location', tenant: principal.tenant, product: announcement.product };
        scope.note({ detail: { file: announcement.filename, sha256: announcement.sha256, bytes: String(length) } });
        await mayUpload(scope, principal, target);
        if (target.kind === 'version') {
          const version = await catalog.version(target.product, target.version);
          // a published version is what customers got: its files do not change under them
          if (version && version.state !== 'draft') throw new Conflict(`${target.product} ${target.version} is ${version.state}: its files cannot change`);
          await catalog.ensureVersion(target.product, target.version, principal.sub, now());
        }
        (req as WithAnnouncement)[ANNOUNCED] = { principal, scope: target, announcement, length };
      });
      next();
    } catch (err) {
      next(err);
    }
  };

  /** HEAD, PATCH, DELETE: only the creator, and only while they may still upload there */
  const resume: RequestHandler = async (req, _res, next) => {
    try {
      const principal = requirePrincipal(req);
      const id = String(req.params.id ?? '');
      const record = /^[0-9a-f]{32}$/.test(id) ? await catalog.upload(id) : undefined;
      // another user's upload is as unknown as a made-up id
      if (!record || record.sub !== principal.sub || record.tenant !== principal.tenant) throw new NotFound('no such upload');
      await audited(trail, { fields: fieldsOf(req, principal), refusal: false }, (scope) => mayUpload(scope, principal, record.scope));
      next();
    } catch (err) {
      next(err);
    }
  };

  const handle = (req: Request, res: Response) =>
    void tus.handle(req, res).catch((err: unknown) => {
      deps.logger.error('release.upload_failed', { err });
      if (!res.headersSent) res.status(500).json({ error: 'server_error', error_description: 'the server encountered an unexpected condition' });
    });
  // abandoned uploads leave no bytes behind (their records expire with the same lifetime)
  const sweeper = setInterval(() => void tus.cleanUpExpiredUploads().catch((err: unknown) => deps.logger.warn('release.upload_sweep_failed', { err })), Math.min(options.uploadExpiryMs, 3_600_000));
  sweeper.unref();
  const r = releasesRoutes;
  return {
    close: () => clearInterval(sweeper),
    /** the tus protocol's operations, at the paths the contracts declare */
    mount(app: Pick<Router, 'options' | 'post' | 'head' | 'patch' | 'delete'>) {
      app.options(expressPath(r.uploadOptions), handle);
      app.post(expressPath(r.createUpload), create, handle);
      for (const route of [r.uploadOffset, r.uploadChunk, r.terminateUpload]) app[route.method](expressPath(route), resume, handle);
    },
  };
}
