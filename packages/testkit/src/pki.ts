import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PKI_NAMES } from '@keyway/dev';
import { ensureDevPki, type DevPki } from '@keyway/tls';

export { PKI_NAMES };

/**
 * Test runs share one PKI in the temp folder (made once, reused while valid): RSA key generation
 * costs seconds, and certificates are not what these tests are about. Read when called: the global
 * setup names the folder after this module is loaded.
 */
export const testPkiDir = () => process.env.KEYWAY_TEST_PKI_DIR ?? join(tmpdir(), 'keyway-test-pki');

export function testPki(): Promise<DevPki> {
  return ensureDevPki(testPkiDir(), [...PKI_NAMES]);
}
