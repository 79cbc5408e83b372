import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { WireError, WireReader, WireWriter, fixedWidth } from './wire.ts';

/** The key types Keyway accepts for SSH: the two OpenSSH and the IdP's client keys have in common (no RSA, no DSA). */
export type SshKeyType = 'ssh-ed25519' | 'ecdsa-sha2-nistp256';
export const SSH_KEY_TYPES: readonly string[] = ['ssh-ed25519', 'ecdsa-sha2-nistp256'];

export interface SshPublicKey {
  type: SshKeyType;
  /** the key in the SSH wire format (what a public key line holds in base64) */
  blob: Buffer;
  key: KeyObject;
}

export class SshFormatError extends Error {}

const b64url = (bytes: Buffer) => bytes.toString('base64url');

/** A public key from its wire blob; anything but an Ed25519 or P-256 key is refused. */
export function publicKeyFromBlob(blob: Buffer): SshPublicKey {
  try {
    const reader = new WireReader(blob);
    const type = reader.text();
    const fields = readKeyFields(type, reader);
    reader.end();
    return { type: type as SshKeyType, blob: Buffer.from(blob), key: fields };
  } catch (err) {
    if (err instanceof WireError) throw new SshFormatError(`malformed public key: ${err.message}`);
    throw err;
  }
}

/** The key fields after the type name, as in a key blob and (after the nonce) in a certificate. */
export function readKeyFields(type: string, reader: WireReader): KeyObject {
  if (type === 'ssh-ed25519') {
    const x = reader.bytes();
    if (x.length !== 32) throw new SshFormatError('an Ed25519 key is 32 bytes');
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(x) }, format: 'jwk' });
  }
  if (type === 'ecdsa-sha2-nistp256') {
    if (reader.text() !== 'nistp256') throw new SshFormatError('the curve does not match the key type');
    const point = reader.bytes();
    if (point.length !== 65 || point[0] !== 4) throw new SshFormatError('a P-256 key is an uncompressed point');
    try {
      return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33)) }, format: 'jwk' });
    } catch {
      throw new SshFormatError('the point is not on P-256');
    }
  }
  throw new SshFormatError(`unsupported key type ${JSON.stringify(type.slice(0, 64))}: use ssh-ed25519 or ecdsa-sha2-nistp256`);
}

/** The key fields of a node key (public or private), written after the type name. */
export function writeKeyFields(writer: WireWriter, key: KeyObject): SshKeyType {
  const jwk = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' });
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && jwk.x) {
    writer.bytes(Buffer.from(jwk.x, 'base64url'));
    return 'ssh-ed25519';
  }
  if (jwk.kty === 'EC' && jwk.crv === 'P-256' && jwk.x && jwk.y) {
    writer.bytes('nistp256').bytes(Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]));
    return 'ecdsa-sha2-nistp256';
  }
  throw new SshFormatError('only Ed25519 and P-256 keys have an SSH form here');
}

export function publicKeyFromKeyObject(key: KeyObject): SshPublicKey {
  const fields = new WireWriter();
  const type = writeKeyFields(fields, key);
  const blob = new WireWriter().bytes(type).raw(fields.toBuffer()).toBuffer();
  return publicKeyFromBlob(blob);
}

/** "ssh-ed25519 AAAA… comment": the type in front must be the type inside. */
export function parsePublicKeyLine(line: string): SshPublicKey {
  const [type, base64] = line.trim().split(/\s+/, 2);
  if (!type || !base64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw new SshFormatError('expected an OpenSSH public key line: "<type> <base64> [comment]"');
  const key = publicKeyFromBlob(Buffer.from(base64, 'base64'));
  if (key.type !== type) throw new SshFormatError(`the line says ${JSON.stringify(type.slice(0, 64))} but holds a ${key.type} key`);
  return key;
}

export const publicKeyLine = (key: SshPublicKey, comment?: string): string => [key.type, key.blob.toString('base64'), comment].filter(Boolean).join(' ');

/** As `ssh-keygen -l` prints it: SHA256 of the blob, unpadded base64. */
export function fingerprint(key: SshPublicKey | Buffer): string {
  const blob = Buffer.isBuffer(key) ? key : key.blob;
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** An SSH signature blob (string algorithm, string signature) by an Ed25519 or P-256 private key. */
export function signData(privateKey: KeyObject, data: Buffer): Buffer {
  const type = publicKeyFromKeyObject(privateKey).type;
  if (type === 'ssh-ed25519')
    return new WireWriter()
      .bytes(type)
      .bytes(sign(null, data, privateKey))
      .toBuffer();
  const rs = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const inner = new WireWriter().mpint(rs.subarray(0, 32)).mpint(rs.subarray(32)).toBuffer();
  return new WireWriter().bytes(type).bytes(inner).toBuffer();
}

/** Whether `signature` (SSH wire: string algorithm, string signature) is `key`'s over `data`; false for anything malformed. */
export function verifySignature(key: SshPublicKey, data: Buffer, signature: Buffer): boolean {
  try {
    const reader = new WireReader(signature);
    const algorithm = reader.text();
    const raw = reader.bytes();
    reader.end();
    if (algorithm !== key.type) return false;
    if (key.type === 'ssh-ed25519') return raw.length === 64 && verify(null, data, key.key, raw);
    const inner = new WireReader(raw);
    const rs = Buffer.concat([fixedWidth(inner.bytes(), 32), fixedWidth(inner.bytes(), 32)]);
    inner.end();
    return verify('sha256', data, { key: key.key, dsaEncoding: 'ieee-p1363' }, rs);
  } catch (err) {
    if (err instanceof WireError || err instanceof SshFormatError) return false;
    throw err;
  }
}

export const isKeyType = (name: string): name is SshKeyType => SSH_KEY_TYPES.includes(name);
