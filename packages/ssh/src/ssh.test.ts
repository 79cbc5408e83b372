import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  certificateAuthorityLine,
  fingerprint,
  parseCertificate,
  parsePublicKeyLine,
  publicKeyFromKeyObject,
  publicKeyLine,
  signCertificate,
  signData,
  SshCertificateError,
  SshFormatError,
  verifyCertificate,
  verifySignature,
} from './index.ts';
import { WireWriter } from './wire.ts';

// Debian's OpenSSH is the reference: what ssh-keygen makes we read, what we make ssh-keygen reads.
const dir = mkdtempSync(join(tmpdir(), 'keyway-ssh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const keygen = (...args: string[]) => execFileSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
let n = 0;
const fresh = (name: string) => {
  n += 1;
  return join(dir, `${name}-${n}`);
};
/** an OpenSSH key pair made by ssh-keygen: its path and public key line */
function opensshKey(type: 'ed25519' | 'ecdsa' | 'rsa'): { path: string; line: string } {
  const path = fresh('key');
  keygen('-q', '-t', type, ...(type === 'ecdsa' ? ['-b', '256'] : []), '-N', '', '-C', 'test', '-f', path);
  return { path, line: readFileSync(`${path}.pub`, 'utf8') };
}
const certOf = (path: string) => Buffer.from(readFileSync(`${path}-cert.pub`, 'utf8').split(' ')[1]!, 'base64');
const ed25519 = () => generateKeyPairSync('ed25519');
const soon = (sec: number) => new Date(Date.now() + sec * 1000);

describe('public keys', () => {
  it.each(['ed25519', 'ecdsa'] as const)('reads ssh-keygen %s keys, writes them back unchanged, and fingerprints them as ssh-keygen -l does', (type) => {
    const { path, line } = opensshKey(type);
    const key = parsePublicKeyLine(line);
    expect(publicKeyLine(key, 'test')).toBe(line.trim());
    expect(keygen('-l', '-f', `${path}.pub`)).toContain(fingerprint(key));
    // and from node's own key object, the same blob
    expect(publicKeyFromKeyObject(key.key).blob.equals(key.blob)).toBe(true);
  });

  it('refuses RSA, a type that lies about its content, and garbage, with SshFormatError', () => {
    expect(() => parsePublicKeyLine(opensshKey('rsa').line)).toThrow(/unsupported key type "ssh-rsa"/);
    const ed = parsePublicKeyLine(opensshKey('ed25519').line);
    expect(() => parsePublicKeyLine(`ecdsa-sha2-nistp256 ${ed.blob.toString('base64')}`)).toThrow(SshFormatError);
    expect(() => parsePublicKeyLine('ssh-ed25519 AAAA')).toThrow(SshFormatError);
    expect(() => parsePublicKeyLine('not a key')).toThrow(SshFormatError);
    expect(() => parsePublicKeyLine(`ssh-ed25519 ${ed.blob.subarray(0, 20).toString('base64')}`)).toThrow(SshFormatError);
  });
});

describe('signatures', () => {
  /** ssh-keygen -Y sign's SSHSIG (PROTOCOL.sshsig): the inner signature is a plain SSH signature over this preamble */
  function sshsig(path: string, message: string): { signed: Buffer; signature: Buffer } {
    const file = fresh('msg');
    writeFileSync(file, message);
    keygen('-Y', 'sign', '-f', path, '-n', 'file', file);
    const armored = readFileSync(`${file}.sig`, 'utf8')
      .replace(/-----[A-Z ]+-----/g, '')
      .replace(/\s/g, '');
    const blob = Buffer.from(armored, 'base64');
    // MAGIC, version, publickey, namespace, reserved, hash_algorithm, signature
    let at = 6 + 4;
    const next = () => {
      const length = blob.readUInt32BE(at);
      const value = blob.subarray(at + 4, at + 4 + length);
      at += 4 + length;
      return value;
    };
    next();
    next();
    next();
    const hash = next().toString();
    const signature = next();
    const signed = Buffer.concat([Buffer.from('SSHSIG'), new WireWriter().bytes('file').bytes('').bytes(hash).bytes(createHash(hash).update(message).digest()).toBuffer()]);
    return { signed, signature };
  }

  it.each(['ed25519', 'ecdsa'] as const)('verifies what OpenSSH signs with a %s key, and nothing else', (type) => {
    const { path, line } = opensshKey(type);
    const key = parsePublicKeyLine(line);
    const { signed, signature } = sshsig(path, 'release 1.2.3');
    expect(verifySignature(key, signed, signature)).toBe(true);
    expect(verifySignature(key, Buffer.concat([signed, Buffer.from('x')]), signature)).toBe(false);
    expect(verifySignature(parsePublicKeyLine(opensshKey(type).line), signed, signature)).toBe(false);
    expect(verifySignature(key, signed, signature.subarray(0, signature.length - 3))).toBe(false);
  });

  it('signs with Ed25519 and P-256 as it verifies (P-256 r and s as mpints, leading zero bytes and all)', () => {
    for (const pair of [ed25519(), generateKeyPairSync('ec', { namedCurve: 'P-256' })]) {
      const key = publicKeyFromKeyObject(pair.publicKey);
      for (let i = 0; i < 20; i += 1) {
        const data = Buffer.from(`data ${i}`);
        expect(verifySignature(key, data, signData(pair.privateKey, data))).toBe(true);
      }
    }
  });
});

describe('certificates', () => {
  it('reads and verifies a user certificate ssh-keygen -s made', () => {
    const ca = opensshKey('ed25519');
    const user = opensshKey('ecdsa');
    keygen('-s', ca.path, '-I', 'keyway:acme:u-1', '-n', 'u-1,u-1-alt', '-V', '-5m:+10m', '-z', '42', `${user.path}.pub`);
    const certificate = verifyCertificate(certOf(user.path), { trusted: [parsePublicKeyLine(ca.line)], type: 'user', principal: 'u-1' });
    expect(certificate).toMatchObject({ type: 'user', keyId: 'keyway:acme:u-1', principals: ['u-1', 'u-1-alt'], serial: 42n, criticalOptions: [] });
    expect(certificate.publicKey.blob.equals(parsePublicKeyLine(user.line).blob)).toBe(true);
    expect(certificate.extensions).toContain('permit-pty');
    expect(certificate.validBefore.getTime() - certificate.validAfter.getTime()).toBe(15 * 60_000);
  });

  it('makes certificates ssh-keygen -L reads: type, key id, serial, principals, window, signing CA, no extensions', () => {
    const ca = ed25519();
    const user = opensshKey('ed25519');
    const validAfter = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    const { line } = signCertificate(ca.privateKey, {
      publicKey: parsePublicKeyLine(user.line),
      type: 'user',
      keyId: 'keyway:acme:u-7',
      principals: ['u-7'],
      validAfter,
      validBefore: soon(600),
      serial: 18446744073709551615n,
    });
    writeFileSync(`${user.path}-cert.pub`, `${line}\n`);
    const listing = keygen('-L', '-f', `${user.path}-cert.pub`);
    expect(listing).toContain('Type: ssh-ed25519-cert-v01@openssh.com user certificate');
    expect(listing).toContain('Key ID: "keyway:acme:u-7"');
    expect(listing).toContain('Serial: 18446744073709551615');
    expect(listing).toMatch(/Principals: \n\s+u-7\n/);
    expect(listing).toMatch(/Critical Options: \(none\)/);
    expect(listing).toMatch(/Extensions: \(none\)/);
    expect(listing).toContain(`Signing CA: ED25519 ${fingerprint(publicKeyFromKeyObject(ca.publicKey))}`);
    expect(listing).toContain(`Public key: ED25519-CERT ${fingerprint(parsePublicKeyLine(user.line))}`);
    // and our reader agrees with what we wrote
    expect(parseCertificate(certOf(user.path))).toMatchObject({ keyId: 'keyway:acme:u-7', principals: ['u-7'], validAfter });
  });

  it('makes host certificates ssh-keygen -L reads, and a known_hosts line naming the CA', () => {
    const ca = ed25519();
    const host = opensshKey('ed25519');
    const { line } = signCertificate(ca.privateKey, {
      publicKey: parsePublicKeyLine(host.line),
      type: 'host',
      keyId: 'releases',
      principals: ['sftp.example', 'localhost'],
      validAfter: soon(-60),
      validBefore: soon(3600),
      serial: 1n,
    });
    writeFileSync(`${host.path}-cert.pub`, `${line}\n`);
    expect(keygen('-L', '-f', `${host.path}-cert.pub`)).toContain('host certificate');
    expect(certificateAuthorityLine('[localhost]:2222', publicKeyFromKeyObject(ca.publicKey))).toMatch(/^@cert-authority \[localhost\]:2222 ssh-ed25519 AAAA[A-Za-z0-9+/=]+$/);
  });

  describe('refuses, with the reason', () => {
    const ca = ed25519();
    const caKey = publicKeyFromKeyObject(ca.publicKey);
    const user = publicKeyFromKeyObject(ed25519().publicKey);
    const make = (overrides: Partial<Parameters<typeof signCertificate>[1]> = {}, signer = ca.privateKey) =>
      signCertificate(signer, { publicKey: user, type: 'user', keyId: 'keyway:acme:u-1', principals: ['u-1'], validAfter: soon(-60), validBefore: soon(600), serial: 7n, ...overrides }).blob;
    const refusal = (blob: Buffer, options: Partial<Parameters<typeof verifyCertificate>[1]> = {}) => {
      try {
        verifyCertificate(blob, { trusted: [caKey], type: 'user', principal: 'u-1', ...options });
        return 'accepted';
      } catch (err) {
        expect(err).toBeInstanceOf(SshCertificateError);
        return (err as SshCertificateError).reason;
      }
    };

    it('accepts the good one', () => expect(refusal(make())).toBe('accepted'));
    it('another CA', () => expect(refusal(make({}, ed25519().privateKey))).toBe('untrusted_ca'));
    it('a changed byte (the principal u-1 → u-2)', () => {
      const blob = make();
      const at = blob.indexOf('u-1', blob.indexOf('keyway:acme:u-1') + 16);
      const tampered = Buffer.from(blob);
      tampered.write('u-2', at);
      expect(refusal(tampered, { principal: 'u-2' })).toBe('bad_signature');
    });
    it('expired (beyond the skew), not yet valid', () => {
      expect(refusal(make({ validAfter: soon(-3600), validBefore: soon(-61) }))).toBe('expired');
      expect(refusal(make({ validAfter: soon(-3600), validBefore: soon(-30) }))).toBe('accepted');
      expect(refusal(make({ validAfter: soon(120), validBefore: soon(600) }))).toBe('not_yet_valid');
    });
    it('a host certificate offered as a user one', () => expect(refusal(make({ type: 'host' }))).toBe('wrong_type'));
    it('another principal', () => expect(refusal(make(), { principal: 'u-2' })).toBe('principal'));
    it('a critical option this server cannot honour (ssh-keygen -O force-command)', () => {
      const caFile = opensshKey('ed25519');
      const userFile = opensshKey('ed25519');
      keygen('-s', caFile.path, '-I', 'x', '-n', 'u-1', '-V', '-1m:+5m', '-O', 'force-command=/bin/true', `${userFile.path}.pub`);
      expect(refusal(certOf(userFile.path), { trusted: [parsePublicKeyLine(caFile.line)] })).toBe('critical_option');
    });
    it('truncated or garbage input, never a crash', () => {
      const blob = make();
      for (const cut of [0, 10, 40, 100, blob.length - 1]) expect(refusal(blob.subarray(0, cut))).toBe('malformed');
      expect(refusal(Buffer.from('garbage garbage garbage'))).toBe('malformed');
      expect(refusal(Buffer.concat([blob, Buffer.from([0])]))).toBe('malformed');
    });
  });
});
