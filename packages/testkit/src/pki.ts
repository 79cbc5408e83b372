import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevPki, type DevPki } from '@keyway/tls';

/** Every certificate the suite uses: one per service, plus the operator and importer callers. */
export const PKI_NAMES = ['idp', 'entitlement', 'pas', 'pac', 'topic', 'audit', 'operator'] as const;

/**
 * Test runs share one PKI in the temp folder (made once, reused while valid): RSA key generation
 * costs seconds, and certificates are not what these tests are about.
 */
export function testPki(): Promise<DevPki> {
  return ensureDevPki(process.env.KEYWAY_TEST_PKI_DIR ?? join(tmpdir(), 'keyway-test-pki'), [...PKI_NAMES]);
}
