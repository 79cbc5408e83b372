import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AxiosInstance, AxiosResponse } from 'axios';
import { z } from 'zod';
import { FileName, releasesRoutes as r } from '@keyway/contracts';
import { send, toApiError, UnreachableError } from './http.ts';
import { urlOf } from './route.ts';

/** A fresh access token per request: a transfer may outlast one (20 min), so the caller refreshes. */
export type TokenSource = () => string | Promise<string>;

export interface TransferOptions {
  accessToken: TokenSource;
  signal?: AbortSignal;
  /** bytes of the file on the server (upload) or on disk (download) so far, and the total */
  onProgress?: (done: number, total: number) => void;
}

export interface UploadTarget {
  product: string;
  /** none: the caller's tenant's upload location of the product */
  version?: string;
  /** default: the file's own name */
  filename?: string;
  /** bytes per PATCH (default 8 MiB) */
  chunkBytes?: number;
}

export interface UploadResult {
  product: string;
  version?: string;
  filename: string;
  size: number;
  sha256: string;
  /** the offset the server reported when an earlier upload was resumed; 0 for a new one */
  resumedFrom: number;
  /** bytes this run sent (less than size when resumed) */
  sentBytes: number;
  /** the file's state after its last byte (tus answer header Upload-File-State: scanning) */
  fileState?: string;
}

/** a file's persistent link: /products/{product}/{version}/{file} */
export interface ReleaseLink {
  product: string;
  version: string;
  file: string;
}

export interface DownloadResult {
  path: string;
  size: number;
  sha256: string;
  /** the bytes the .part held when this run resumed it; 0 for a whole download */
  resumedFrom: number;
  /** bytes this run received */
  receivedBytes: number;
}

const TUS = { 'tus-resumable': '1.0.0' };
const MiB = 1024 * 1024;
/** a PATCH's bytes, or the server hashing the whole file after the last one, may take a while */
const TRANSFER_TIMEOUT_MS = 10 * 60_000;
/** failures in a row, without a byte of progress between them, before the upload gives up (its state file stays) */
const MAX_ATTEMPTS = 3;

/** What `<file>.keyway-upload` holds: where the upload lives, and what it was announced as. */
const UploadState = z.object({
  url: z.string(),
  product: z.string(),
  version: z.string().optional(),
  filename: z.string(),
  size: z.number(),
  mtimeMs: z.number(),
  sha256: z.string(),
});
type UploadState = z.infer<typeof UploadState>;

/** What `<dest>.keyway-download` holds: the ETag of the bytes in `<dest>.part` (RFC 9110 §13.1.5 If-Range needs it). */
const DownloadState = z.object({ url: z.string(), etag: z.string() });

export const uploadStatePath = (file: string) => `${file}.keyway-upload`;
export const downloadStatePath = (dest: string) => `${dest}.keyway-download`;

async function readState<S extends z.ZodType>(schema: S, path: string): Promise<z.output<S> | undefined> {
  try {
    const parsed = schema.safeParse(JSON.parse(await readFile(path, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
/** mode 0600: the upload URL is not a credential (the creator's token is needed too), but it is nobody else's business */
const writeState = (path: string, state: object) => writeFile(path, `${JSON.stringify(state)}\n`, { mode: 0o600 });

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: MiB }), hash);
  return hash.digest('hex');
}

/** Counts the bytes passing through, for progress and for the caller's accounting. */
function counter(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
}

/** tus 1.0 Upload-Metadata: `key base64(value)` pairs. */
const metadata = (fields: Record<string, string | undefined>) =>
  Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key} ${Buffer.from(value ?? '').toString('base64')}`)
    .join(',');

/** A non-2xx answer whose body is a stream: read it (bounded) so its OAuth error body becomes the ApiError. */
async function streamError(response: AxiosResponse): Promise<Error> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.data as Readable) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) break;
    chunks.push(chunk as Buffer);
  }
  let data: unknown;
  try {
    data = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    data = undefined;
  }
  return toApiError({ ...response, data });
}

/** An aborted transfer ends with the signal's reason, not a transport error. */
const stopIfAborted = (signal: AbortSignal | undefined) => signal?.throwIfAborted();
const abortedOr = (signal: AbortSignal | undefined) => (err: unknown) => {
  stopIfAborted(signal);
  throw err;
};

/**
 * Uploads and downloads for the releases service: tus 1.0 (creation, HEAD, PATCH) and GET with Range
 * and If-Range. Written as the few requests they are rather than with tus-js-client: its Node path
 * reads each chunk into memory through its own fs adapter and keeps its own fingerprint store, while
 * here the state is one small file next to the source, the body is streamed from disk, and errors are
 * this package's ApiError like every other call.
 */
export function releaseTransfers(http: AxiosInstance) {
  const auth = async (token: TokenSource) => ({ authorization: `Bearer ${await token()}` });

  async function offsetOf(url: string, options: TransferOptions): Promise<number | undefined> {
    const headers = await auth(options.accessToken);
    const response = await send(() => http.head(url, { headers: { ...TUS, ...headers }, signal: options.signal }), 'releases');
    // gone: expired, finished, or never ours; a new upload starts
    if (response.status === 404 || response.status === 410) return undefined;
    if (response.status !== 200) throw toApiError(response);
    return Number(response.headers['upload-offset']);
  }

  async function create(file: string, state: Omit<UploadState, 'url'>, options: TransferOptions): Promise<string> {
    const authorization = await auth(options.accessToken);
    const response = await send(
      () =>
        http.post(r.createUpload.path, undefined, {
          headers: {
            ...TUS,
            ...authorization,
            'upload-length': String(state.size),
            'upload-metadata': metadata({ product: state.product, version: state.version, filename: state.filename, sha256: state.sha256 }),
          },
          signal: options.signal,
        }),
      'releases',
    );
    if (response.status !== 201 || typeof response.headers.location !== 'string') throw toApiError(response);
    const url = new URL(response.headers.location, http.defaults.baseURL).pathname;
    await writeState(uploadStatePath(file), { url, ...state });
    return url;
  }

  return {
    /**
     * tus 1.0: announce the file (its SHA-256 first, streamed), then PATCH it in chunks streamed from
     * disk. The upload URL is kept in `<file>.keyway-upload` (0600) until the last byte is in: a
     * failure, or a new run after a crash, asks the server for its offset (HEAD) and goes on from there.
     */
    async upload(file: string, target: UploadTarget, options: TransferOptions): Promise<UploadResult> {
      const filename = FileName.parse(target.filename ?? basename(file));
      const info = await stat(file);
      if (!info.isFile()) throw new Error(`${file} is not a file`);
      const statePath = uploadStatePath(file);
      const announced = { product: target.product, version: target.version, filename, size: info.size, mtimeMs: info.mtimeMs };
      const saved = await readState(UploadState, statePath);
      // the same file, announced the same way: its hash is known and its upload may still be there
      const same = saved && saved.product === announced.product && saved.version === announced.version && saved.filename === filename && saved.size === info.size && saved.mtimeMs === info.mtimeMs;
      const sha256 = same ? saved.sha256 : await sha256OfFile(file);
      stopIfAborted(options.signal);
      let url = same ? saved.url : undefined;
      let offset = 0;
      let resumedFrom = 0;
      if (url) {
        const known = await offsetOf(url, options);
        if (known === undefined) url = undefined;
        else resumedFrom = offset = known;
      }
      url ??= await create(file, { ...announced, sha256 }, options);
      const chunkBytes = target.chunkBytes ?? 8 * MiB;
      let sentBytes = 0;
      let failures = 0;
      let fileState: string | undefined;
      options.onProgress?.(offset, info.size);
      while (offset < info.size) {
        stopIfAborted(options.signal);
        const end = Math.min(offset + chunkBytes, info.size);
        const from = offset;
        try {
          const h = await auth(options.accessToken);
          let inFlight = 0;
          const body = createReadStream(file, { start: from, end: end - 1, highWaterMark: MiB }).pipe(
            counter((n) => {
              inFlight += n;
              sentBytes += n;
              options.onProgress?.(from + inFlight, info.size);
            }),
          );
          const response = await send(
            () =>
              http.patch(url!, body, {
                headers: { ...TUS, ...h, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(from), 'content-length': String(end - from) },
                signal: options.signal,
                timeout: TRANSFER_TIMEOUT_MS,
                maxBodyLength: Number.POSITIVE_INFINITY,
              }),
            'releases',
          );
          if (response.status === 204) {
            offset = Number(response.headers['upload-offset']);
            const state = response.headers['upload-file-state'];
            if (typeof state === 'string') fileState = state;
            failures = 0;
            options.onProgress?.(offset, info.size);
            continue;
          }
          // tus 1.0 §PATCH: 409 when Upload-Offset is not the server's: ask it, and go on from there
          if (response.status !== 409 || response.data?.error !== undefined) {
            const error = toApiError(response);
            // 460: the bytes are not what was announced; the server dropped them, so does the state
            if (response.status === 460 || response.status === 404 || response.status === 409) await rm(statePath, { force: true });
            throw error;
          }
        } catch (err) {
          stopIfAborted(options.signal);
          // an answer is final; a transport failure (reset, timeout) is tried again from the server's offset
          if (!(err instanceof UnreachableError)) throw err;
          failures += 1;
          if (failures >= MAX_ATTEMPTS) throw err;
          await sleep(1000 * failures, undefined, { signal: options.signal });
        }
        const known = await offsetOf(url, options);
        if (known === undefined) {
          await rm(statePath, { force: true });
          throw new Error('the upload is gone from the server (expired?): run the upload again to start a new one');
        }
        if (known > offset) failures = 0;
        offset = known;
      }
      await rm(statePath, { force: true });
      return { product: target.product, ...(target.version !== undefined && { version: target.version }), filename, size: info.size, sha256, resumedFrom, sentBytes, ...(fileState && { fileState }) };
    },

    download,
  };

  /**
   * GET the file's persistent link into `<dest>.part`; a .part left by an earlier run is resumed with
   * `Range: bytes=<its size>-` and `If-Range: <its ETag>` (RFC 9110 §13.1.5: a 200 answer means the
   * file changed, so it starts again from zero). At the end the bytes' SHA-256 must be the strong
   * ETag (the releases service's ETag is the SHA-256), then the .part becomes `dest`.
   */
  async function download(link: ReleaseLink, dest: string, options: TransferOptions): Promise<DownloadResult> {
    const url = urlOf(r.download, { ...link });
    const part = `${dest}.part`;
    const statePath = downloadStatePath(dest);
    const saved = await readState(DownloadState, statePath);
    const have = await stat(part).then(
      (s) => s.size,
      () => 0,
    );
    const resume = saved && saved.url === url && have > 0 ? { from: have, etag: saved.etag } : undefined;
    const response = await send(
      async () =>
        http.get(url, {
          headers: { ...(await auth(options.accessToken)), ...(resume && { range: `bytes=${resume.from}-`, 'if-range': resume.etag }) },
          responseType: 'stream',
          signal: options.signal,
          timeout: TRANSFER_TIMEOUT_MS,
          // the bytes are checked against the ETag: no transparent decompression
          decompress: false,
        }),
      'releases',
    ).catch(abortedOr(options.signal));
    // 416: the .part is not a prefix of this file (as long as it, or longer): start again
    if (response.status === 416 && resume) {
      (response.data as Readable).destroy();
      await rm(part, { force: true });
      await rm(statePath, { force: true });
      return download(link, dest, options);
    }
    if (response.status !== 200 && response.status !== 206) throw await streamError(response);
    const etag = String(response.headers.etag ?? '');
    const expected = /^"([0-9a-f]{64})"$/.exec(etag)?.[1];
    if (!expected) {
      (response.data as Readable).destroy();
      throw new Error(`the answer for ${url} has no strong SHA-256 ETag (${etag || 'none'}): it cannot be checked`);
    }
    const appending = response.status === 206;
    const start = appending ? (resume?.from ?? 0) : 0;
    const total = Number(response.headers['content-length'] ?? 0) + start;
    await writeState(statePath, { url, etag });
    let receivedBytes = 0;
    options.onProgress?.(start, total);
    const file = createWriteStream(part, { flags: appending ? 'a' : 'w', mode: 0o600 });
    await pipeline(
      response.data as Readable,
      counter((n) => {
        receivedBytes += n;
        options.onProgress?.(start + receivedBytes, total);
      }),
      file,
      { signal: options.signal },
    ).catch(async (err: unknown) => {
      // the .part must hold all it will hold before this answers: a resume starts from its size
      if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()));
      return abortedOr(options.signal)(err);
    });
    const sha256 = await sha256OfFile(part);
    if (sha256 !== expected) {
      await rm(part, { force: true });
      await rm(statePath, { force: true });
      throw new Error(`the downloaded bytes' SHA-256 is ${sha256}, not the ${expected} the server states: discarded, download again`);
    }
    await rename(part, dest);
    await rm(statePath, { force: true });
    return { path: dest, size: start + receivedBytes, sha256, resumedFrom: start, receivedBytes };
  }
}
