import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import type { SshCertificateResponse } from '@keyway/contracts';
import { seal, unseal, type Keyring } from '@keyway/seal';
import { fingerprint, parsePublicKeyLine, publicKeyFromKeyObject, publicKeyLine, signCertificate, type SshPublicKey } from '@keyway/ssh';
import type { Store } from '@keyway/store';

const CA_KEY = 'ssh-ca';
export const DEFAULT_SSH_CERT_TTL_SEC = 600;
export const DEFAULT_SSH_HOST_CERT_TTL_SEC = 7 * 86_400;
/** A certificate is valid from this long before it is issued, so a client or server whose clock is a little behind accepts it at once. */
export const SSH_CLOCK_SKEW_SEC = 60;

/** The stored CA: its public line in the clear, the private key (PKCS#8 PEM) sealed under the KEK. */
const StoredCa = z.object({ public_key: z.string().min(1), private_key: z.string().min(1), created_at: z.string() });

/** AAD of the sealed private key: it opens only as the key of the public key stored beside it. */
const sealContext = (publicKey: SshPublicKey) => `pas/ssh-ca/${fingerprint(publicKey)}`;

export interface IssuedSshCertificate extends SshCertificateResponse {
  /** the certified key's SHA256 fingerprint, for the trail */
  fingerprint: string;
}

export interface SshCertificateAuthority {
  readonly publicKey: SshPublicKey;
  /** "ssh-ed25519 AAAA… keyway-ssh-ca": what /.well-known/ssh-ca.pub and discovery publish */
  readonly publicKeyLine: string;
  /** signs a certificate valid for `ttlSec` from now (and SSH_CLOCK_SKEW_SEC before it), with a random 64-bit serial */
  issue(request: { publicKey: SshPublicKey; type: 'user' | 'host'; keyId: string; principals: string[]; ttlSec: number; now?: number }): IssuedSshCertificate;
}

function authority(privateKey: KeyObject, publicKey: SshPublicKey): SshCertificateAuthority {
  return {
    publicKey,
    publicKeyLine: publicKeyLine(publicKey, 'keyway-ssh-ca'),
    issue({ publicKey: subject, type, keyId, principals, ttlSec, now = Date.now() }) {
      const nowSec = Math.floor(now / 1000);
      const validAfter = new Date((nowSec - SSH_CLOCK_SKEW_SEC) * 1000);
      const validBefore = new Date((nowSec + ttlSec) * 1000);
      const serial = randomBytes(8).readBigUInt64BE();
      // No critical options, no extensions: SFTP needs neither a pty nor forwarding.
      const { line } = signCertificate(privateKey, { publicKey: subject, type, keyId, principals, validAfter, validBefore, serial, extensions: [] });
      return {
        certificate: line,
        serial: serial.toString(),
        key_id: keyId,
        principals,
        valid_after: validAfter.toISOString(),
        valid_before: validBefore.toISOString(),
        fingerprint: fingerprint(subject),
      };
    },
  };
}

async function open(raw: string, kek: Keyring): Promise<SshCertificateAuthority> {
  const stored = StoredCa.parse(JSON.parse(raw));
  const named = parsePublicKeyLine(stored.public_key);
  const privateKey = createPrivateKey((await unseal(kek, stored.private_key, sealContext(named))).toString('utf8'));
  const publicKey = publicKeyFromKeyObject(privateKey);
  if (fingerprint(publicKey) !== fingerprint(named)) throw new Error('the stored SSH CA private key does not match its public key');
  return authority(privateKey, publicKey);
}

/**
 * PAS's one SSH CA key (Ed25519), in its system of record so every instance signs with the same key:
 * the first instance to start creates it (set-if-absent wins), sealed under the KEK like the signing
 * key ring (keys/sealed-ring.ts), so `keyway keys rewrap` moves it with the rest. The private key never
 * leaves PAS and is never logged.
 */
export async function loadSshCertificateAuthority(records: Store, kek: Keyring): Promise<SshCertificateAuthority> {
  const raw = await records.get(CA_KEY);
  if (raw !== null) return open(raw, kek);
  const { privateKey } = generateKeyPairSync('ed25519');
  const publicKey = publicKeyFromKeyObject(privateKey);
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const record = JSON.stringify({ public_key: publicKeyLine(publicKey), private_key: await seal(kek, pem, sealContext(publicKey)), created_at: new Date().toISOString() });
  if (await records.set(CA_KEY, record, { ifAbsent: true })) return authority(privateKey, publicKey);
  // another instance created it first: use that one
  const stored = await records.get(CA_KEY);
  if (stored === null) throw new Error('the SSH CA key vanished from the store while being created');
  return open(stored, kek);
}
