import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { AuditLog } from '@keyway/audit';
import type { Logger } from '@keyway/kit';
import { ScanFailed, ScannerUnavailable, type createScanner } from '@keyway/scan';
import type { Catalog, FileScope, StoredFile } from '../catalog/catalog.ts';
import { type BlobStore, moveFile } from '../storage/blob-store.ts';
import type { StorageLayout } from '../storage/layout.ts';

type Scanner = ReturnType<typeof createScanner>;

export interface ScanWorkerDeps {
  catalog: Catalog;
  blobs: BlobStore;
  layout: StorageLayout;
  scanner: Scanner;
  audit: AuditLog;
  logger: Logger;
}

const scopeDetail = (scope: FileScope, file: StoredFile): Record<string, string> => ({
  product: scope.product,
  ...(scope.kind === 'version' ? { version: scope.version } : { location: scope.tenant }),
  file: file.name,
  sha256: file.sha256,
  bytes: String(file.size),
});

/**
 * Scans every staged file with clamd, one at a time, and settles it: clean files move into the blob
 * store, infected ones to quarantine (never served). A scanner that cannot be reached leaves the file
 * scan_pending, tried again every retryMs (fail closed: nothing is downloadable before clamd says
 * clean). A file clamd cannot judge whole (above its StreamMaxLength or limits) is refused for good.
 * The audit event is written before the state changes, so an unrecorded verdict is tried again.
 */
export function scanWorker(deps: ScanWorkerDeps, options: { retryMs: number }) {
  const { catalog, blobs, layout, scanner, audit, logger } = deps;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  /** the longest a scan may take before another instance may take the file over */
  const LEASE_MS = 30 * 60_000;

  async function settle(scope: FileScope, name: string): Promise<void> {
    if (!(await catalog.leaseScan(scope, name, LEASE_MS))) return;
    try {
      await judge(scope, name);
    } finally {
      await catalog.endLease(scope, name);
    }
  }

  async function judge(scope: FileScope, name: string): Promise<void> {
    const file = await catalog.file(scope, name);
    if (!file || (file.state !== 'scanning' && file.state !== 'scan_pending')) {
      await catalog.unqueueScan(scope, name);
      return;
    }
    const staged = layout.staged(file);
    const event = { tenant: file.tenant, subject: file.uploadedBy, detail: scopeDetail(scope, file) };
    try {
      const verdict = await scanner.scan(createReadStream(staged, { highWaterMark: 1024 * 1024 }));
      if (verdict.clean) {
        await audit.record({ ...event, action: 'release.scan_clean', outcome: 'success' });
        await blobs.put(file.sha256, staged);
        await catalog.setFileState(scope, name, 'clean');
      } else {
        // moved out of reach first: whatever the trail does, an infected file is never served
        await moveFile(staged, join(layout.quarantine, `${file.sha256}-${Date.now()}`));
        await audit.record({ ...event, action: 'release.scan_infected', outcome: 'denied', reason: 'infected', detail: { ...event.detail, signature: verdict.signature, quarantined: 'true' } });
        await catalog.setFileState(scope, name, 'infected', `infected: ${verdict.signature} (quarantined)`);
      }
      await catalog.unqueueScan(scope, name);
    } catch (err) {
      if (err instanceof ScannerUnavailable) {
        if (file.state !== 'scan_pending') {
          await audit.record({ ...event, action: 'release.scan_pending', outcome: 'failure', reason: err.code });
          await catalog.setFileState(scope, name, 'scan_pending', 'the scanner is unavailable; the file waits for it');
        }
        throw err;
      }
      if (err instanceof ScanFailed) {
        // clamd answered without judging all of it: asking again gives the same answer, so never clean
        await moveFile(staged, join(layout.quarantine, `${file.sha256}-${Date.now()}`));
        await audit.record({ ...event, action: 'release.scan_refused', outcome: 'denied', reason: err.code });
        await catalog.setFileState(scope, name, 'too_large', `not scanned whole (${err.code}): refused, never published unscanned`);
        await catalog.unqueueScan(scope, name);
        return;
      }
      throw err;
    }
  }

  async function round(): Promise<void> {
    do {
      again = false;
      for (const { scope, name } of await catalog.scanQueue()) {
        if (stopped) return;
        try {
          await settle(scope, name);
        } catch (err) {
          if (err instanceof ScannerUnavailable) {
            logger.warn('release.scanner_unavailable', { code: err.code });
            // the rest of the queue would find it down too: wait for the next round
            return;
          }
          logger.error('release.scan_failed', { err, product: scope.product, file: name });
        }
      }
    } while (again && !stopped);
  }

  const kick = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = round()
      .catch((err: unknown) => logger.error('release.scan_round_failed', { err }))
      .finally(() => (running = undefined));
  };
  const timer = setInterval(kick, options.retryMs);
  timer.unref();
  kick();
  return {
    /** a file was staged: scan now rather than at the next round */
    kick,
    /** resolves once the round under way (if any) is done: tests wait on it */
    idle: async () => {
      while (running) await running;
    },
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
export type ScanWorker = ReturnType<typeof scanWorker>;
