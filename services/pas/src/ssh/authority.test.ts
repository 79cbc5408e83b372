import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureDevKek, Keyring, SealError } from '@keyway/seal';
import { publicKeyFromKeyObject, verifyCertificate } from '@keyway/ssh';
import { createMemoryStore } from '@keyway/store';
import { loadSshCertificateAuthority, SSH_CLOCK_SKEW_SEC } from './authority.ts';

const kek = await Keyring.open(await ensureDevKek(await mkdtemp(join(tmpdir(), 'keyway-pas-ssh-'))));
type Stored = { public_key: string; private_key: string };
const stored = (raw: string | null) => JSON.parse(raw!) as Stored;

describe('the SSH CA key, sealed at rest in the system of record', () => {
  it('is made once, sealed and bound to its public key; every instance loading it signs with the same key', async () => {
    const records = createMemoryStore({ prefix: 'pas:' });
    // instances starting together on an empty store: one creates it, the others read that one
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => loadSshCertificateAuthority(records, kek)));
    expect(new Set([a!.publicKeyLine, b!.publicKeyLine, c!.publicKeyLine]).size).toBe(1);
    expect((await loadSshCertificateAuthority(records, kek)).publicKeyLine).toBe(a!.publicKeyLine);

    const record = stored(await records.get('ssh-ca'));
    expect(a!.publicKeyLine.startsWith(record.public_key)).toBe(true);
    expect(record.private_key).toMatch(/^kwsealed:v1:dev-1:/);
    expect(await records.get('ssh-ca')).not.toMatch(/PRIVATE KEY/);

    // another CA's sealed key put under this public key does not open: refused, never used
    const other = createMemoryStore({ prefix: 'pas:' });
    await loadSshCertificateAuthority(other, kek);
    await records.set('ssh-ca', JSON.stringify({ ...record, private_key: stored(await other.get('ssh-ca')).private_key }));
    await expect(loadSshCertificateAuthority(records, kek)).rejects.toBeInstanceOf(SealError);
  });

  it('issues certificates its public key verifies: the window, principals, key id and a fresh serial each time', async () => {
    const ca = await loadSshCertificateAuthority(createMemoryStore({ prefix: 'pas:' }), kek);
    const publicKey = publicKeyFromKeyObject(generateKeyPairSync('ed25519').privateKey);
    const now = Date.parse('2026-12-03T10:00:00Z');
    const issue = () => ca.issue({ publicKey, type: 'user', keyId: 'keyway:acme:u-1', principals: ['u-1'], ttlSec: 600, now });
    const first = issue();
    const blob = Buffer.from(first.certificate.split(' ')[1]!, 'base64');
    const certificate = verifyCertificate(blob, { trusted: [ca.publicKey], type: 'user', principal: 'u-1', now: new Date(now) });
    expect(certificate).toMatchObject({ keyId: 'keyway:acme:u-1', principals: ['u-1'], criticalOptions: [], extensions: [] });
    expect(certificate.validAfter.getTime()).toBe(now - SSH_CLOCK_SKEW_SEC * 1000);
    expect(certificate.validBefore.getTime()).toBe(now + 600_000);
    expect(first).toMatchObject({ key_id: 'keyway:acme:u-1', principals: ['u-1'], valid_after: '2026-12-03T09:59:00.000Z', valid_before: '2026-12-03T10:10:00.000Z' });
    expect(String(certificate.serial)).toBe(first.serial);
    expect(issue().serial).not.toBe(first.serial);
  });
});
