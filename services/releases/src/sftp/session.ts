import { randomUUID } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { audited, mergeFields, type AuditFields, type AuditLog, type AuditScope } from '@keyway/audit';
import { mayOnRelease, type ReleaseRights, type ReleaseVersion } from '@keyway/contracts';
import { AccessDenied, Conflict, NotFound, OAuthError, PayloadTooLarge, type Logger } from '@keyway/kit';
import { CLAMAV_MAX_FILE_BYTES } from '@keyway/scan';
import ssh2, { type Attributes, type FileEntry, type SFTPWrapper } from 'ssh2';
import { authorizeRelease, requireDownloadable, rightsOn, visibleVersions } from '../auth/access.ts';
import { currentRights, type ReleaseAuthorizer } from '../auth/authorizer.ts';
import type { Principal } from '../auth/principal.ts';
import type { Catalog, FileScope, StoredFile } from '../catalog/catalog.ts';
import { moveVersion } from '../catalog/version-state.ts';
import type { ScanWorker } from '../scan/scan-worker.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { StorageLayout } from '../storage/layout.ts';
import { StageRefused, stageReceived } from '../uploads/stage.ts';
import { absolute, DRAFTS, type Place, placeOf, type Shelf, shelfOf, UPLOAD, WITHDRAWN } from './tree.ts';

const { OPEN_MODE, STATUS_CODE } = ssh2.utils.sftp;

export interface SftpDeps {
  catalog: Catalog;
  blobs: BlobStore;
  layout: StorageLayout;
  authorizer: ReleaseAuthorizer;
  audit: AuditLog;
  scans: ScanWorker;
  logger: Logger;
  /** RELEASES_MAX_FILE_BYTES and clamd's limit: a longer upload is cut off, it could never be published */
  maxFileBytes: number;
  scannableBytes: number;
  now: () => Date;
  /** SFTP_REAUTHORIZE_SEC: how long an open handle's authorization holds before its next read or write asks again */
  reauthorizeMs: number;
}

/** Who is on the other end of a session, as authenticate.ts proved it. */
export interface SftpCaller {
  principal: Principal;
  /** the session's audit fields: source address, how the caller authenticated */
  fields: AuditFields;
  /** a certificate's end: nothing is opened after it (the short lifetime is the revocation) */
  validBefore?: Date | undefined;
}

/** What an open file handle asks again while it is used: the open's own authorization. */
interface Authorized {
  reauthorize: () => Promise<void>;
  checkedAt: number;
  checking?: Promise<void> | undefined;
  /** the refusal once a check failed: every later request on the handle gets it without asking again */
  revoked?: unknown;
}

type Handle =
  | { kind: 'dir'; entries: FileEntry[] | undefined }
  | ({ kind: 'read'; file: FileHandle; size: number } & Authorized)
  | ({ kind: 'write'; file: FileHandle; path: string; scope: FileScope; name: string; size: number; pending: Set<Promise<unknown>>; refused?: string } & Authorized);

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
/** a READ is answered with at most this much (OpenSSH asks 32 KiB) */
const MAX_READ = 64 * 1024;
/**
 * Reads being read plus answers waiting for the client's SSH window: beyond it a READ is refused, so
 * a client that asks and never takes the answers holds at most this many chunks (4 MiB) in memory.
 * OpenSSH keeps 64 requests in flight and takes its answers as they come.
 */
const MAX_PENDING_READS = 64;
/** files and folders open at once in one session (each holds a file descriptor or a listing) */
const MAX_HANDLES = 64;

const seconds = (iso: string | undefined) => Math.floor((iso ? Date.parse(iso) : Date.now()) / 1000);
const dirAttrs = (writable: boolean, time?: string): Attributes => ({ mode: S_IFDIR | (writable ? 0o755 : 0o555), uid: 0, gid: 0, size: 0, atime: seconds(time), mtime: seconds(time) });
const fileAttrs = (file: StoredFile, mode: number): Attributes => ({ mode: S_IFREG | mode, uid: 0, gid: 0, size: file.size, atime: seconds(file.uploadedAt), mtime: seconds(file.uploadedAt) });

/** `ls -l` style, what OpenSSH's sftp prints for a long listing. */
function longname(name: string, attrs: Attributes): string {
  const mode = attrs.mode ?? 0;
  const bits = 'rwxrwxrwx'.replace(/./g, (letter, index: number) => (mode & (1 << (8 - index)) ? letter : '-'));
  const date = new Date((attrs.mtime ?? 0) * 1000);
  const when = `${date.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' })} ${String(date.getUTCDate()).padStart(2)} ${date.getUTCFullYear()}`;
  return `${mode & S_IFDIR ? 'd' : '-'}${bits}    1 keyway   keyway   ${String(attrs.size ?? 0).padStart(12)} ${when} ${name}`;
}
const entry = (name: string, attrs: Attributes): FileEntry => ({ filename: name, longname: longname(name, attrs), attrs });

/** A refusal the client reads: SFTP status codes carry a message, as HTTPS errors carry error_description. */
class SftpStatus extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * One SFTP session (the subsystem of one SSH session): the releases tree (tree.ts) as the caller's
 * rights show it, every open, mkdir and rename authorized then (the entitlement service, as each HTTPS
 * request is) and audited as the HTTPS routes audit the same step. Reads and writes go to and from
 * disk at the client's offsets (constant memory, resumable reads); a written file goes through the
 * one staging path (scan before anyone can download it).
 */
export function serveSftp(sftp: SFTPWrapper, caller: SftpCaller, deps: SftpDeps): void {
  const { catalog, blobs, authorizer, audit, logger } = deps;
  const { principal } = caller;
  const trail = { audit };
  const log = logger.child({ actor: { sub: principal.sub, tenant: principal.tenant }, via: 'sftp' });
  const handles = new Map<number, Handle>();
  let nextHandle = 1;
  const scannable = Math.min(deps.scannableBytes, CLAMAV_MAX_FILE_BYTES);
  const uploadLimit = Math.min(deps.maxFileBytes, scannable);

  const fieldsOf = (path: string): AuditFields => mergeFields(caller.fields, { subject: principal.sub, tenant: principal.tenant, tokenId: principal.tokenId, detail: { path: path.slice(0, 512) } });

  let closed = false;
  let readsInFlight = 0;
  /** answers ssh2 holds until the client's window opens */
  const backlog = () => (sftp as unknown as { _buffer?: unknown[] })._buffer?.length ?? 0;

  /** A handle's file closed, and a half-written upload removed. */
  const release = async (handle: Handle): Promise<void> => {
    if (handle.kind === 'read') await handle.file.close();
    if (handle.kind === 'write') {
      await Promise.allSettled(handle.pending);
      await handle.file.close();
      await rm(handle.path, { force: true });
    }
  };
  const roomForHandle = () => {
    if (handles.size >= MAX_HANDLES) throw new SftpStatus(STATUS_CODE.FAILURE, `at most ${MAX_HANDLES} files and folders may be open at once: close some`);
  };
  /** Answers an open with its handle; an open that finishes after the session ended leaves nothing open behind. */
  const answerHandle = (reqid: number, handle: Handle): void => {
    if (closed) {
      void release(handle).catch((err: unknown) => log.warn('sftp.release_failed', { err }));
      return;
    }
    const id = nextHandle++;
    handles.set(id, handle);
    const buffer = Buffer.alloc(4);
    buffer.writeUInt32BE(id);
    sftp.handle(reqid, buffer);
  };
  const handleOf = (buffer: Buffer): [number, Handle | undefined] => {
    const id = buffer.length === 4 ? buffer.readUInt32BE(0) : 0;
    return [id, handles.get(id)];
  };

  /** Runs one request and answers it: its own answer, or the status its refusal or failure maps to. */
  const serve = (reqid: number, operation: string, work: () => Promise<void>) => {
    work().catch((err: unknown) => {
      if (err instanceof SftpStatus) return sftp.status(reqid, err.code, err.message);
      if (err instanceof OAuthError) {
        if (err.code === 'access_denied') return sftp.status(reqid, STATUS_CODE.PERMISSION_DENIED, err.description);
        if (err.status === 404) return sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE, err.description);
        if (err.status >= 500) log.warn('sftp.unavailable', { operation, err: err.message });
        return sftp.status(reqid, STATUS_CODE.FAILURE, err.status >= 500 ? `${err.description}; try again later` : err.description);
      }
      log.error('sftp.failed', { operation, err });
      sftp.status(reqid, STATUS_CODE.FAILURE, 'the server could not do this; try again later');
    });
  };

  const noSuch = (path: string) => new SftpStatus(STATUS_CODE.NO_SUCH_FILE, `no such file or folder: ${absolute(path)}`);
  /** A certificate that ran out ends what its holder may open: they log in again (keyway ssh login). */
  const stillValid = () => {
    if (caller.validBefore && deps.now() >= caller.validBefore) throw new SftpStatus(STATUS_CODE.PERMISSION_DENIED, 'your SSH certificate has expired: run keyway ssh login and connect again');
  };
  const placeFor = (path: string): Place => {
    stillValid();
    const place = placeOf(path);
    if (!place) throw noSuch(path);
    return place;
  };
  const rightsNow = async (): Promise<ReleaseRights> => (await currentRights(authorizer, principal)).rights;

  /** A version as this person may see it on that shelf, or undefined (as if it did not exist). */
  const versionOn = async (rights: ReleaseRights, product: string, version: string, shelf: Shelf): Promise<ReleaseVersion | undefined> => {
    const found = await catalog.version(product, version);
    if (!found || shelfOf(found.state) !== shelf) return undefined;
    if (shelf !== 'published') return mayOnRelease(rights, product, 'publish') ? found : undefined;
    return visibleVersions(rights, product, [found]).length > 0 ? found : undefined;
  };

  /** What a place is, for STAT and for listing its parent: undefined when this person cannot see it. */
  async function attrsOf(rights: ReleaseRights, place: Place): Promise<Attributes | undefined> {
    switch (place.kind) {
      case 'root':
        return dirAttrs(false);
      case 'product':
        return rightsOn(rights, place.product).length > 0 ? dirAttrs(false) : undefined;
      case 'shelf':
        return mayOnRelease(rights, place.product, 'publish') ? dirAttrs(place.shelf === DRAFTS) : undefined;
      case 'location':
        return mayOnRelease(rights, place.product, 'upload') ? dirAttrs(true) : undefined;
      case 'version': {
        const version = await versionOn(rights, place.product, place.version, place.shelf);
        return version && dirAttrs(place.shelf === DRAFTS, version.publishedAt ?? version.createdAt);
      }
      case 'file': {
        const version = await versionOn(rights, place.product, place.version, place.shelf);
        const file = version && (await catalog.file({ kind: 'version', product: place.product, version: place.version }, place.name));
        return file && fileAttrs(file, place.shelf === 'published' && file.state === 'clean' ? 0o444 : 0o000);
      }
      case 'location_file': {
        if (!mayOnRelease(rights, place.product, 'upload')) return undefined;
        const file = await catalog.file({ kind: 'location', tenant: principal.tenant, product: place.product }, place.name);
        // an upload location is write-only: what was sent is listed, never read back
        return file && fileAttrs(file, 0o200);
      }
    }
  }

  async function listing(rights: ReleaseRights, place: Place): Promise<FileEntry[] | undefined> {
    if ((await attrsOf(rights, place)) === undefined) return undefined;
    switch (place.kind) {
      case 'root':
        return Object.keys(rights)
          .filter((product) => rightsOn(rights, product).length > 0)
          .sort()
          .map((product) => entry(product, dirAttrs(false)));
      case 'product': {
        const { product } = place;
        const published = visibleVersions(rights, product, await catalog.versions(product)).filter((v) => v.state === 'published');
        return [
          ...published.map((v) => entry(v.version, dirAttrs(false, v.publishedAt))),
          ...(mayOnRelease(rights, product, 'publish') ? [entry(DRAFTS, dirAttrs(true)), entry(WITHDRAWN, dirAttrs(false))] : []),
          ...(mayOnRelease(rights, product, 'upload') ? [entry(UPLOAD, dirAttrs(true))] : []),
        ];
      }
      case 'shelf':
        return (await catalog.versions(place.product)).filter((v) => shelfOf(v.state) === place.shelf).map((v) => entry(v.version, dirAttrs(place.shelf === DRAFTS, v.createdAt)));
      case 'version': {
        const files = await catalog.files({ kind: 'version', product: place.product, version: place.version });
        return files.map((file) => entry(file.name, fileAttrs(file, place.shelf === 'published' && file.state === 'clean' ? 0o444 : 0o000)));
      }
      case 'location':
        return (await catalog.files({ kind: 'location', tenant: principal.tenant, product: place.product })).map((file) => entry(file.name, fileAttrs(file, 0o200)));
      default:
        throw new SftpStatus(STATUS_CODE.FAILURE, `${place.kind === 'file' || place.kind === 'location_file' ? 'a file' : 'this'} is not a folder`);
    }
  }

  sftp.on('REALPATH', (reqid, path) => {
    const name = absolute(path);
    sftp.name(reqid, [{ filename: name, longname: name, attrs: {} as Attributes }]);
  });

  for (const event of ['STAT', 'LSTAT'] as const) {
    sftp.on(event, (reqid: number, path: string) =>
      serve(reqid, event, async () => {
        const attrs = await attrsOf(await rightsNow(), placeFor(path));
        if (!attrs) throw noSuch(path);
        sftp.attrs(reqid, attrs);
      }),
    );
  }

  sftp.on('OPENDIR', (reqid, path) =>
    serve(reqid, 'OPENDIR', async () => {
      roomForHandle();
      const entries = await listing(await rightsNow(), placeFor(path));
      if (!entries) throw noSuch(path);
      answerHandle(reqid, { kind: 'dir', entries });
    }),
  );

  sftp.on('READDIR', (reqid, buffer) => {
    const [, handle] = handleOf(buffer);
    if (handle?.kind !== 'dir') return sftp.status(reqid, STATUS_CODE.FAILURE, 'not a folder handle');
    if (!handle.entries || handle.entries.length === 0) return sftp.status(reqid, STATUS_CODE.EOF);
    sftp.name(reqid, handle.entries);
    handle.entries = undefined;
  });

  sftp.on('OPEN', (reqid, path, flags) =>
    serve(reqid, 'OPEN', async () => {
      roomForHandle();
      const place = placeFor(path);
      const writing = (flags & (OPEN_MODE.WRITE | OPEN_MODE.APPEND | OPEN_MODE.CREAT | OPEN_MODE.TRUNC)) !== 0;
      if (writing) return openForWrite(reqid, path, place, flags);
      if (place.kind !== 'file' || place.shelf !== 'published') {
        if (place.kind === 'location_file') throw new SftpStatus(STATUS_CODE.PERMISSION_DENIED, 'an upload location is write-only: files sent there are not read back');
        throw noSuch(path);
      }
      await openForRead(reqid, path, place);
    }),
  );

  /** A download: the same checks and record as the HTTPS file link, then the blob opened for reads at any offset (reget). */
  async function openForRead(reqid: number, path: string, place: Extract<Place, { kind: 'file' }>) {
    const { product, version, name } = place;
    /** the HTTPS file link's checks, at the open and again while the handle is read */
    const check = () =>
      audited(trail, { fields: fieldsOf(path), refusal: false }, async (scope) => {
        const rights = await authorizeRelease(authorizer, scope, principal, product, 'download');
        const found = await catalog.version(product, version);
        const file = found && (await catalog.file({ kind: 'version', product, version }, name));
        if (!found || !file) throw new NotFound(`no file ${name} in ${product} ${version}`);
        requireDownloadable(scope, principal, rights, found, file);
        return { file, fields: scope.fields };
      });
    const { file, fields } = await check();
    const handle = await blobs.openRandom(file.sha256).catch(() => undefined);
    if (!handle) throw new NotFound(`no file ${name} in ${product} ${version}`);
    // recorded before the first byte leaves (fail closed: a download the trail cannot take does not happen)
    try {
      await audit.record({ ...fields, action: 'release.downloaded', outcome: 'success', detail: { ...fields.detail, product, version, file: name, sha256: file.sha256, bytes: String(file.size) } });
    } catch (err) {
      await handle.close();
      throw err;
    }
    answerHandle(reqid, { kind: 'read', file: handle, size: file.size, reauthorize: async () => void (await check()), checkedAt: Date.now() });
  }

  /** An upload: a draft version's file (publishers) or the tenant's location (uploaders), authorized and recorded as a tus creation. */
  async function openForWrite(reqid: number, path: string, place: Place, flags: number) {
    if (place.kind !== 'file' && place.kind !== 'location_file') throw new SftpStatus(STATUS_CODE.PERMISSION_DENIED, 'files are written into drafts/<version>/ or upload/ only');
    if (flags & OPEN_MODE.APPEND) throw new SftpStatus(STATUS_CODE.OP_UNSUPPORTED, 'appending is not supported: send the whole file');
    const scope: FileScope = place.kind === 'file' ? { kind: 'version', product: place.product, version: place.version } : { kind: 'location', tenant: principal.tenant, product: place.product };
    const right = scope.kind === 'version' ? 'publish' : 'upload';
    await audited(trail, { action: 'release.upload_started', fields: fieldsOf(path), refusal: false }, async (step: AuditScope) => {
      step.note({ detail: { file: place.name } });
      if (place.kind === 'file' && place.shelf !== DRAFTS) {
        throw step.refuse(
          new AccessDenied(`${place.product} ${place.version} is ${place.shelf === 'published' ? 'published' : 'withdrawn'}: its files cannot change`, 'version_closed'),
          'authorization.denied',
          { reason: 'version_closed' },
        );
      }
      await authorizeRelease(authorizer, step, principal, place.product, right);
      if (scope.kind === 'version') {
        const version = await catalog.version(scope.product, scope.version);
        if (!version) throw new NotFound(`no draft ${scope.version} of ${scope.product}: mkdir it first`);
        if (version.state !== 'draft') throw new Conflict(`${scope.product} ${scope.version} is ${version.state}: its files cannot change`);
      }
    });
    const temporary = join(deps.layout.uploads, `sftp-${randomUUID()}`);
    const file = await open(temporary, 'wx', 0o600);
    // while the file is written, the right to write it is asked again as reads are
    const reauthorize = () => audited(trail, { fields: fieldsOf(path), refusal: false }, async (step) => void (await authorizeRelease(authorizer, step, principal, place.product, right)));
    answerHandle(reqid, { kind: 'write', file, path: temporary, scope, name: place.name, size: 0, pending: new Set(), reauthorize, checkedAt: Date.now() });
  }

  /**
   * Every read and write is authorized when it happens: by the open's answer while it is younger than
   * reauthorizeMs, then by asking again (one question for all the requests in flight). A refusal (a
   * contract changed, a user removed) ends the handle: it is recorded once and every later request gets it.
   */
  async function stillAuthorized(handle: Authorized): Promise<void> {
    if (handle.revoked !== undefined) throw handle.revoked;
    if (Date.now() - handle.checkedAt < deps.reauthorizeMs) return;
    handle.checking ??= handle
      .reauthorize()
      .then(() => {
        handle.checkedAt = Date.now();
      })
      .catch((err: unknown) => {
        if (err instanceof OAuthError && err.status < 500) handle.revoked = err;
        throw err;
      })
      .finally(() => {
        handle.checking = undefined;
      });
    await handle.checking;
  }

  sftp.on('READ', (reqid, buffer, offset, length) => {
    const [, handle] = handleOf(buffer);
    if (handle?.kind !== 'read') return sftp.status(reqid, STATUS_CODE.FAILURE, 'not a handle open for reading');
    if (offset >= handle.size) return sftp.status(reqid, STATUS_CODE.EOF);
    if (readsInFlight + backlog() >= MAX_PENDING_READS) return sftp.status(reqid, STATUS_CODE.FAILURE, `more than ${MAX_PENDING_READS} reads unanswered: take the answers first`);
    const chunk = Buffer.allocUnsafe(Math.min(length, MAX_READ, handle.size - offset));
    readsInFlight += 1;
    serve(reqid, 'READ', async () => {
      try {
        await stillAuthorized(handle);
        const { bytesRead } = await handle.file.read(chunk, 0, chunk.length, offset);
        if (bytesRead === 0) return sftp.status(reqid, STATUS_CODE.EOF);
        sftp.data(reqid, bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead));
      } finally {
        readsInFlight -= 1;
      }
    });
  });

  sftp.on('WRITE', (reqid, buffer, offset, data) => {
    const [, handle] = handleOf(buffer);
    if (handle?.kind !== 'write') return sftp.status(reqid, STATUS_CODE.FAILURE, 'not a handle open for writing');
    const end = offset + data.length;
    if (end > uploadLimit) {
      handle.refused = new PayloadTooLarge(`files may be at most ${uploadLimit} bytes (${end > scannable ? 'what the scanner can judge' : 'RELEASES_MAX_FILE_BYTES'})`).description;
      return sftp.status(reqid, STATUS_CODE.FAILURE, handle.refused);
    }
    const write = stillAuthorized(handle).then(() => handle.file.write(data, 0, data.length, offset));
    handle.pending.add(write);
    serve(reqid, 'WRITE', async () => {
      try {
        await write;
        handle.size = Math.max(handle.size, end);
        sftp.status(reqid, STATUS_CODE.OK);
      } catch (err) {
        // a file with a hole where this write failed is never staged: its close fails and removes it
        handle.refused ??= 'a write failed: send the file again';
        throw err;
      } finally {
        handle.pending.delete(write);
      }
    });
  });

  for (const event of ['FSTAT'] as const) {
    sftp.on(event, (reqid, buffer) => {
      const [, handle] = handleOf(buffer);
      if (!handle || handle.kind === 'dir') return sftp.status(reqid, STATUS_CODE.FAILURE, 'not a file handle');
      sftp.attrs(reqid, { mode: S_IFREG | (handle.kind === 'read' ? 0o444 : 0o200), uid: 0, gid: 0, size: handle.size, atime: seconds(undefined), mtime: seconds(undefined) });
    });
  }
  // `put -p` and friends set times and modes: the catalog keeps its own, so this is accepted and ignored
  sftp.on('FSETSTAT', (reqid) => sftp.status(reqid, STATUS_CODE.OK));
  sftp.on('SETSTAT', (reqid) => sftp.status(reqid, STATUS_CODE.OK));

  sftp.on('CLOSE', (reqid, buffer) => {
    const [id, handle] = handleOf(buffer);
    if (!handle) return sftp.status(reqid, STATUS_CODE.FAILURE, 'no such handle');
    handles.delete(id);
    serve(reqid, 'CLOSE', async () => {
      if (handle.kind === 'read') await handle.file.close();
      if (handle.kind === 'write') await finishUpload(handle);
      sftp.status(reqid, STATUS_CODE.OK);
    });
  });

  /** The last byte is in: the file goes through the one staging path (hash, stage, scan), or is removed when refused. */
  async function finishUpload(handle: Extract<Handle, { kind: 'write' }>) {
    await Promise.allSettled(handle.pending);
    await handle.file.close();
    if (handle.revoked !== undefined) {
      await rm(handle.path, { force: true });
      throw handle.revoked;
    }
    if (handle.refused) {
      await rm(handle.path, { force: true });
      throw new SftpStatus(STATUS_CODE.FAILURE, handle.refused);
    }
    try {
      await stageReceived(
        deps,
        {
          path: handle.path,
          uploadId: handle.path.slice(-36).replaceAll('-', ''),
          scope: handle.scope,
          filename: handle.name,
          sub: principal.sub,
          tenant: principal.tenant,
          length: handle.size,
          fields: caller.fields,
        },
        deps.now(),
      );
    } catch (err) {
      await rm(handle.path, { force: true });
      if (err instanceof StageRefused) throw new SftpStatus(STATUS_CODE.FAILURE, err.message);
      throw err;
    }
  }

  sftp.on('MKDIR', (reqid, path) =>
    serve(reqid, 'MKDIR', async () => {
      const place = placeFor(path);
      if (place.kind !== 'version' || place.shelf !== DRAFTS) throw new SftpStatus(STATUS_CODE.PERMISSION_DENIED, 'folders are made only as drafts/<version> (publishers): a new draft version');
      await audited(trail, { action: 'release.drafted', fields: fieldsOf(path), refusal: false }, async (step) => {
        await authorizeRelease(authorizer, step, principal, place.product, 'publish');
        const existing = await catalog.version(place.product, place.version);
        if (existing) throw new Conflict(`${place.product} ${place.version} exists already (${existing.state})`);
        await catalog.ensureVersion(place.product, place.version, principal.sub, deps.now());
      });
      sftp.status(reqid, STATUS_CODE.OK);
    }),
  );

  /** Publishing is a rename of drafts/<version> to <version>; withdrawing, of <version> to withdrawn/<version>. */
  sftp.on('RENAME', (reqid, from, to) =>
    serve(reqid, 'RENAME', async () => {
      const source = placeFor(from);
      const target = placeFor(to);
      const same = source.kind === 'version' && target.kind === 'version' && source.product === target.product && source.version === target.version;
      const move = same && source.shelf === DRAFTS && target.shelf === 'published' ? 'published' : same && source.shelf === 'published' && target.shelf === WITHDRAWN ? 'withdrawn' : undefined;
      if (!move || source.kind !== 'version') {
        throw new SftpStatus(STATUS_CODE.OP_UNSUPPORTED, `renames publish (drafts/<version> → <version>) or withdraw (<version> → withdrawn/<version>) a version, nothing else`);
      }
      await audited(trail, { action: move === 'published' ? 'release.published' : 'release.withdrawn', fields: fieldsOf(from), refusal: false }, async (step) => {
        await authorizeRelease(authorizer, step, principal, source.product, move === 'published' ? 'publish' : 'withdraw');
        // the shelf named is where the version is: drafts/<v> is only ever a draft (a withdrawn one is not re-published from there)
        await moveVersion(catalog, source.product, source.version, move, deps.now(), move === 'published' ? 'draft' : 'published');
      });
      sftp.status(reqid, STATUS_CODE.OK);
    }),
  );

  // nothing is removed over SFTP (a published version is withdrawn, not deleted): refused and recorded
  for (const event of ['REMOVE', 'RMDIR'] as const) {
    sftp.on(event, (reqid: number, path: string) =>
      serve(reqid, event, async () => {
        await audit.record({ ...fieldsOf(path), action: 'authorization.denied', outcome: 'denied', reason: 'remove_refused' });
        throw new SftpStatus(STATUS_CODE.PERMISSION_DENIED, 'nothing is removed here: withdraw a version by renaming it to withdrawn/<version>');
      }),
    );
  }
  for (const event of ['READLINK', 'SYMLINK'] as const) {
    sftp.on(event, (reqid: number) => sftp.status(reqid, STATUS_CODE.OP_UNSUPPORTED, 'there are no links here'));
  }

  /** A session that ends leaves no open file behind, and no half-written upload. */
  sftp.on('close', () => {
    closed = true;
    for (const handle of handles.values()) void release(handle).catch((err: unknown) => log.warn('sftp.release_failed', { err }));
    handles.clear();
  });
}
