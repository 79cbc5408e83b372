import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantKeys } from '@keyway/pac';
import { loadKeyRing, loadSshCertificateAuthority } from '@keyway/pas';
import { decodeJwt } from 'jose';
import { secretOfOtpauthUri, totpAt, totpStep } from '@keyway/kit';
import { Keyring, kekIdOf } from '@keyway/seal';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant } from '../helpers.ts';
import { startKeyway } from './keyway.ts';

/**
 * Issue 11: the KEK rotates without downtime. The operator adds a KEK to the keyring file and makes
 * it current, `keyway keys rewrap` moves every sealed key onto it while PAS and PAC run, the old KEK
 * is removed from the file, and both services go on signing and minting.
 */
const kek = (id: string) => ({ id, key: randomBytes(32).toString('base64') });
const k1 = kek('k1');
const k2 = kek('k2');

let suite: Suite;
let dir: string;
let kekFile: string;
const writeKeyring = (current: string, keks: { id: string; key: string }[]) => writeFileSync(kekFile, JSON.stringify({ current, keks }), { mode: 0o600 });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keyway-rewrap-'));
  kekFile = join(dir, 'kek.json');
  writeKeyring('k1', [k1]);
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, kekFile });
});
afterAll(async () => {
  await suite?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const rewrap = (env: Record<string, string>) => startKeyway(['--json', 'keys', 'rewrap'], { PATH: process.env.PATH ?? '', HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), ...env }).done;

describe('keyway keys rewrap (child process against the real suite)', () => {
  it('moves PAS’s, PAC’s and the IdP’s sealed keys onto the new KEK; with the old one removed both services keep working', async () => {
    const { tenant, email } = await provisionTenant(suite);
    const before = await suite.pas.password(email, PASSWORD);
    await suite.pac.sas({ refresh_token: before.refresh_token, rights: 'listen' });
    // issue 14: the IdP seals TOTP secrets under the same keyring
    const totp = secretOfOtpauthUri((await suite.pas.enrolTotp(email, PASSWORD)).otpauth_uri);
    const storeEnv = { DATABASE_URL: suite.database!.adminUrl, STORE_PREFIX: suite.records.pas.prefix.replace(/:pas:$/, ''), KEYWAY_KEK_FILE: kekFile };
    const ringRaw = async () => JSON.parse((await suite.records.pas.get('signing-keys'))!) as { privateJwk: string }[];
    expect((await ringRaw()).map((k) => kekIdOf(k.privateJwk))).toEqual(['k1', 'k1']);

    writeKeyring('k2', [k1, k2]);
    const moved = await rewrap(storeEnv);
    expect(moved.code).toBe(0);
    const answer = JSON.parse(moved.stdout) as { kek: string; stores: { service: string; records: number; values: number; moved: number }[] };
    expect(answer).toEqual({
      kek: 'k2',
      stores: [
        // the signing key ring and the SSH CA key (issue 17)
        { service: 'pas', records: 2, values: 3, moved: 3 },
        { service: 'pac', records: 1, values: 2, moved: 2 },
        { service: 'idp', records: 1, values: 1, moved: 1 },
      ],
    });
    expect(JSON.parse((await rewrap(storeEnv)).stdout).stores.map((s: { moved: number }) => s.moved)).toEqual([0, 0, 0]);

    writeKeyring('k2', [k2]);
    const onlyK2 = await Keyring.open(kekFile);
    expect((await ringRaw()).map((k) => kekIdOf(k.privateJwk))).toEqual(['k2', 'k2']);
    expect((await loadKeyRing(suite.records.pas, onlyK2)).list()).toHaveLength(2);
    expect((await loadSshCertificateAuthority(suite.records.pas, onlyK2)).publicKeyLine).toBe(await suite.pas.sshCaPublicKey());
    expect(await tenantKeys(suite.records.pac, onlyK2).find(tenant)).toBeDefined();
    // the running services: PAS signs (held in memory), PAC opens the tenant keys under k2 (read again from the file)
    const after = await suite.pas.password(email, PASSWORD, undefined, undefined, totpAt(totp, totpStep(Date.now())));
    expect(decodeJwt(after.access_token).amr).toEqual(['pwd', 'otp', 'mfa']);
    expect((await suite.pac.sas({ refresh_token: after.refresh_token, rights: 'listen' })).sas_key).toMatch(/^SharedAccessSignature /);
  }, 60_000);

  it('without KEYWAY_KEK_FILE or DATABASE_URL it is a usage error (2); a keyring others can read is refused (2)', async () => {
    const prefix = { STORE_PREFIX: 'keyway-test-none' };
    const DATABASE_URL = suite.database!.adminUrl;
    expect((await rewrap({ DATABASE_URL, ...prefix })).code).toBe(2);
    expect((await rewrap({ KEYWAY_KEK_FILE: kekFile, ...prefix })).code).toBe(2);
    const open = join(dir, 'open.json');
    writeFileSync(open, JSON.stringify({ current: 'k2', keks: [k2] }), { mode: 0o644 });
    const refused = await rewrap({ DATABASE_URL, KEYWAY_KEK_FILE: open, ...prefix });
    expect({ code: refused.code, stderr: refused.stderr }).toEqual({ code: 2, stderr: expect.stringContaining('chmod 600') });
  });
});
