import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PKI_NAMES } from '../packages/testkit/src/pki.ts';
import { ensureDevPki } from '@keyway/tls';

/** One development PKI for the whole run (RSA key generation takes seconds), removed afterwards. */
export default async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-test-pki-'));
  await ensureDevPki(dir, [...PKI_NAMES]);
  process.env.KEYWAY_TEST_PKI_DIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
