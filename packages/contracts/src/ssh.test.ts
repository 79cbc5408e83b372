import { describe, expect, it } from 'vitest';
import { parseSshUserKeyId, sshUserKeyId } from './ssh.ts';

describe('the key id of a Keyway SSH user certificate', () => {
  it('carries the tenant and the user id, read back as written (a user id may hold colons)', () => {
    expect(sshUserKeyId('acme', 'u-1')).toBe('keyway:acme:u-1');
    expect(parseSshUserKeyId(sshUserKeyId('acme', 'u-1'))).toEqual({ tenant: 'acme', sub: 'u-1' });
    expect(parseSshUserKeyId('keyway:acme:a:b')).toEqual({ tenant: 'acme', sub: 'a:b' });
  });

  it('is nobody’s when PAS did not write it so: another prefix, a tenant that is no tenant id, no user', () => {
    for (const keyId of ['keyway-host:releases', 'other:acme:u-1', 'keyway:Acme:u-1', 'keyway::u-1', 'keyway:acme:', 'keyway:acme', '']) {
      expect(parseSshUserKeyId(keyId), keyId).toBeUndefined();
    }
  });
});
