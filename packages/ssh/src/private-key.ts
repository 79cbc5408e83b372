import { randomBytes, type KeyObject } from 'node:crypto';
import { SshFormatError } from './keys.ts';
import { WireWriter } from './wire.ts';

const MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');
/** the cipher block size of an unencrypted key ("none"): the private section is padded to it */
const BLOCK = 8;

/**
 * An Ed25519 private key as OpenSSH writes it unencrypted (PROTOCOL.key, "openssh-key-v1"), which
 * `ssh`, `sftp` and `ssh-keygen` read: Debian's OpenSSH 9.2 does not read a PKCS#8 Ed25519 key.
 * Protect the file (0600): it holds the key in the clear, as `ssh-keygen -N ''` would.
 */
export function openSshPrivateKey(privateKey: KeyObject, comment = ''): string {
  const jwk = privateKey.export({ format: 'jwk' });
  if (privateKey.type !== 'private' || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.d || !jwk.x) throw new SshFormatError('only an Ed25519 private key is written in the OpenSSH format');
  const x = Buffer.from(jwk.x, 'base64url');
  const seed = Buffer.from(jwk.d, 'base64url');
  const publicBlob = new WireWriter().bytes('ssh-ed25519').bytes(x).toBuffer();
  // two equal random words: a reader checks them to tell a wrong passphrase (meaningless without one, but read)
  const check = randomBytes(4).readUInt32BE(0);
  const section = new WireWriter()
    .uint32(check)
    .uint32(check)
    .bytes('ssh-ed25519')
    .bytes(x)
    .bytes(Buffer.concat([seed, x]))
    .bytes(comment);
  const unpadded = section.toBuffer();
  const padding = Buffer.from(Array.from({ length: (BLOCK - (unpadded.length % BLOCK)) % BLOCK }, (_, i) => i + 1));
  const body = new WireWriter()
    .raw(MAGIC)
    .bytes('none')
    .bytes('none')
    .bytes(Buffer.alloc(0))
    .uint32(1)
    .bytes(publicBlob)
    .bytes(Buffer.concat([unpadded, padding]))
    .toBuffer();
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  return ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n');
}
