import type { ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDevKek } from '@keyway/seal';
import { createTestDatabase, REDIS_URL, testPki, type TestDatabase } from '@keyway/testkit';
import { issueServiceCert, type DevPki } from '@keyway/tls';
import { clearStorePrefix, exited, freePort, presented, runService, stopAll, waitReady, writePkiFiles } from './processes.ts';

/**
 * What a deployment mounts as files (issue 15): secrets as X_FILE (Kubernetes secret volumes, systemd
 * LoadCredential, /run/secrets/keyway/), and the TLS certificate, renewed in place while the process
 * runs. On the IdP as its own process from its main.ts, on the machine's PostgreSQL and Redis.
 */
describe('settings and certificates from files, for a service process', () => {
  let pki: DevPki;
  let dir: string;
  let database: TestDatabase;
  let base: Record<string, string>;
  const prefix = `keyway-secret-files-${Date.now()}`;
  const children: ChildProcess[] = [];

  /** a secret as an operator mounts it: mode 0600, with the trailing newline `echo` leaves */
  const secretFile = (name: string, value: string) => {
    const path = join(dir, name);
    writeFileSync(path, `${value}\n`, { mode: 0o600 });
    return path;
  };

  beforeAll(async () => {
    pki = await testPki();
    dir = mkdtempSync(join(tmpdir(), 'keyway-secret-files-'));
    writePkiFiles(dir, pki);
    database = await createTestDatabase();
    base = {
      TLS_CERT_FILE: join(dir, 'idp.crt'),
      TLS_KEY_FILE: join(dir, 'idp.key'),
      TLS_CA_FILE: join(dir, 'ca.crt'),
      KEYWAY_KEK_FILE: await ensureDevKek(dir),
      PAS_URL: 'https://localhost:1',
      ENTITLEMENT_URL: 'https://localhost:2',
      STORE_PREFIX: prefix,
      LOG_LEVEL: 'warn',
    };
  }, 60_000);

  afterAll(async () => {
    await stopAll(children);
    await clearStorePrefix(prefix);
    await database?.drop();
  });

  const start = async (env: Record<string, string>) => {
    const port = await freePort();
    const child = runService('idp', { ...base, PORT: String(port), ...env });
    children.push(child);
    return { child, url: `https://localhost:${port}` };
  };

  it('becomes ready in production with DATABASE_URL_FILE and REDIS_URL_FILE (their values in no variable)', async () => {
    const { child, url } = await start({
      DATABASE_URL_FILE: secretFile('database-url', database.serviceUrl('idp')),
      REDIS_URL_FILE: secretFile('redis-url', REDIS_URL),
      TLS_RELOAD_SEC: '1',
    });
    await waitReady('idp', url, pki.ca.certPem, 60_000, child);

    // the certificate renewed in place is presented on the next connection, without a restart
    const before = await presented(url, pki.ca.certPem);
    expect(before.serialNumber).toBe(serialOf(pki.certs.idp!.certPem));
    const renewed = issueServiceCert(pki.ca, 'idp');
    // as cert-manager and ensureDevPki write them: each file replaced by rename, key first
    for (const [file, pem] of [
      ['idp.key', renewed.keyPem],
      ['idp.crt', renewed.certPem],
    ] as const) {
      writeFileSync(join(dir, `${file}.new`), pem, { mode: 0o600 });
      renameSync(join(dir, `${file}.new`), join(dir, file));
    }
    await expect.poll(async () => (await presented(url, pki.ca.certPem)).serialNumber, { timeout: 10_000, interval: 250 }).toBe(serialOf(renewed.certPem));
    await waitReady('idp', url, pki.ca.certPem, 5000, child);
  }, 90_000);

  it('refuses a setting given both ways, naming the key and not the value, and a file it cannot read, naming the path (exit 78)', async () => {
    const both = await exited(
      (await start({ DATABASE_URL: 'postgres://keyway_idp:env-secret-pw@127.0.0.1/k', DATABASE_URL_FILE: secretFile('database-url-2', 'postgres://keyway_idp:file-secret-pw@127.0.0.1/k'), REDIS_URL }))
        .child,
    );
    expect(both.code).toBe(78);
    expect(both.stderr).toContain('DATABASE_URL: set both DATABASE_URL and DATABASE_URL_FILE');
    expect(`${both.stderr}${both.stdout}`).not.toMatch(/env-secret-pw|file-secret-pw/);

    const missing = join(dir, 'no-such-secret');
    const unreadable = await exited((await start({ DATABASE_URL: database.serviceUrl('idp'), REDIS_URL_FILE: missing })).child);
    expect(unreadable.code, unreadable.stderr).toBe(78);
    expect(unreadable.stderr).toContain(`REDIS_URL_FILE: cannot read ${missing} (ENOENT)`);
  }, 60_000);
});

/** upper-case hex, as Node prints a peer's serial */
const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toUpperCase();
