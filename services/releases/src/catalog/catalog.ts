import type { FileState, ReleaseFile, ReleaseVersion, VersionState } from '@keyway/contracts';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Conflict } from '@keyway/kit';
import type { Store } from '@keyway/store';

/**
 * Where a file belongs: a version of a product (publishers), or a tenant's upload location of a
 * product (uploaders). Its key in the records is the scope's id.
 */
export type FileScope = { kind: 'version'; product: string; version: string } | { kind: 'location'; tenant: string; product: string };

/** A file as the records keep it: what the API shows, plus who sent it from which tenant. */
export interface StoredFile extends ReleaseFile {
  tenant: string;
  /** its name under staged/ until the scanner has judged it */
  stagedAs?: string | undefined;
}

/** An upload in progress (tus): whose it is and what it was announced as. */
export interface UploadRecord {
  id: string;
  sub: string;
  tenant: string;
  scope: FileScope;
  filename: string;
  sha256: string;
  length: number;
  createdAt: string;
}

// separators none of the names can hold (slugs, semver, FileName)
const scopeId = (scope: FileScope) => (scope.kind === 'version' ? `v:${scope.product}:${scope.version}` : `l:${scope.tenant}:${scope.product}`);
const fileKey = (scope: FileScope, name: string) => `file:${scopeId(scope)}:${name}`;
const SCAN_QUEUE = 'scanq';
const queueMember = (scope: FileScope, name: string) => JSON.stringify([scope, name]);

/** a version's lease: longer than any change under it takes, short enough that a dead holder does not block for long */
const LEASE_MS = 30_000;
const LEASE_WAIT_MS = 10_000;

const parse = <T>(value: string | null): T | undefined => (value === null ? undefined : (JSON.parse(value) as T));

/** Products, versions, files and uploads in the system of record (the service's records store). */
export function catalog(records: Store) {
  return {
    async products(): Promise<string[]> {
      return records.zrangeByLex('products');
    },
    async versions(product: string): Promise<ReleaseVersion[]> {
      const names = await records.zrangeByLex(`versions:${product}`);
      const found = await Promise.all(names.map((version) => this.version(product, version)));
      return found.filter((v): v is ReleaseVersion => v !== undefined);
    },
    version: async (product: string, version: string) => parse<ReleaseVersion>(await records.get(`version:${product}:${version}`)),
    /** the version, made a draft when it does not exist yet */
    async ensureVersion(product: string, version: string, by: string, now: Date): Promise<ReleaseVersion> {
      const draft: ReleaseVersion = { product, version, state: 'draft', createdAt: now.toISOString(), createdBy: by };
      if (await records.set(`version:${product}:${version}`, JSON.stringify(draft), { ifAbsent: true })) {
        await records.zadd('products', product);
        await records.zadd(`versions:${product}`, version);
        return draft;
      }
      return (await this.version(product, version)) as ReleaseVersion;
    },
    /**
     * Runs `change` alone among the changes of one version's files and state (a file staged into it, a
     * publish or withdrawal): a lease in the records, shared by every instance, that lapses on its own
     * if its holder dies. Without it a file staged while the version is published lands in it.
     */
    async whileVersionHeld<T>(product: string, version: string, change: () => Promise<T>): Promise<T> {
      const key = `version-lease:${product}:${version}`;
      const holder = randomUUID();
      for (const deadline = Date.now() + LEASE_WAIT_MS; !(await records.set(key, holder, { ifAbsent: true, ttlMs: LEASE_MS })); await sleep(25)) {
        if (Date.now() > deadline) throw new Conflict(`${product} ${version} is being changed by someone else; try again`);
      }
      try {
        return await change();
      } finally {
        if ((await records.get(key)) === holder) await records.del(key);
      }
    },
    /** moves the version from `from` to `to` (compare and set: two publishers at once change it once) */
    async setVersionState(current: ReleaseVersion, to: VersionState, now: Date): Promise<ReleaseVersion | undefined> {
      const next: ReleaseVersion = { ...current, state: to, ...(to === 'published' ? { publishedAt: now.toISOString() } : {}), ...(to === 'withdrawn' ? { withdrawnAt: now.toISOString() } : {}) };
      const key = `version:${current.product}:${current.version}`;
      const stored = await records.get(key);
      if (stored === null || parse<ReleaseVersion>(stored)?.state !== current.state) return undefined;
      return (await records.compareAndSet(key, stored, JSON.stringify(next))) ? next : undefined;
    },
    async files(scope: FileScope): Promise<StoredFile[]> {
      const names = await records.zrangeByLex(`files:${scopeId(scope)}`);
      const found = await Promise.all(names.map((name) => this.file(scope, name)));
      return found.filter((f): f is StoredFile => f !== undefined);
    },
    file: async (scope: FileScope, name: string) => parse<StoredFile>(await records.get(fileKey(scope, name))),
    async putFile(scope: FileScope, file: StoredFile): Promise<void> {
      await records.set(fileKey(scope, file.name), JSON.stringify(file));
      await records.zadd(`files:${scopeId(scope)}`, file.name);
    },
    async setFileState(scope: FileScope, name: string, state: FileState, reason?: string): Promise<StoredFile | undefined> {
      const file = await this.file(scope, name);
      if (!file) return undefined;
      const next: StoredFile = { ...file, state, ...(reason === undefined ? {} : { reason }) };
      if (reason === undefined) delete next.reason;
      await records.set(fileKey(scope, name), JSON.stringify(next));
      return next;
    },
    /** files waiting for the scanner: put in when staged, taken out once judged */
    queueScan: (scope: FileScope, name: string) => records.zadd(SCAN_QUEUE, queueMember(scope, name)),
    unqueueScan: (scope: FileScope, name: string) => records.zrem(SCAN_QUEUE, queueMember(scope, name)),
    /** one instance scans a file at a time: the lease lapses on its own if that instance dies mid-scan */
    leaseScan: (scope: FileScope, name: string, ttlMs: number) => records.set(`scan-lease:${queueMember(scope, name)}`, '1', { ifAbsent: true, ttlMs }),
    endLease: (scope: FileScope, name: string) => records.del(`scan-lease:${queueMember(scope, name)}`).then(() => undefined),
    async scanQueue(): Promise<Array<{ scope: FileScope; name: string }>> {
      return (await records.zrangeByLex(SCAN_QUEUE, { limit: 100 })).map((member) => {
        const [scope, name] = JSON.parse(member) as [FileScope, string];
        return { scope, name };
      });
    },
    upload: async (id: string) => parse<UploadRecord>(await records.get(`upload:${id}`)),
    putUpload: (upload: UploadRecord, ttlMs: number) => records.set(`upload:${upload.id}`, JSON.stringify(upload), { ttlMs }).then(() => undefined),
    deleteUpload: (id: string) => records.del(`upload:${id}`).then(() => undefined),
  };
}
export type Catalog = ReturnType<typeof catalog>;
