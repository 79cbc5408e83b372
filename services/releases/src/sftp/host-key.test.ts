import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ApiError } from '@keyway/clients';
import { ConfigError, silentLogger } from '@keyway/kit';
import { parsePublicKeyLine, signCertificate } from '@keyway/ssh';
import { hostIdentity } from './host-key.ts';

const ca = generateKeyPairSync('ed25519').privateKey;
const DAY = 86_400_000;

/** PAS's host-certificate answer for `line`, signed by `signer`, of the given type and window. */
function issuer(options: { validForMs: number; type?: 'host' | 'user'; otherKey?: boolean; signer?: KeyObject }) {
  const calls: string[] = [];
  const issue = async (line: string, hostnames: string[]) => {
    calls.push(line);
    const publicKey = options.otherKey
      ? parsePublicKeyLine(`ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, 7)]).toString('base64')}`)
      : parsePublicKeyLine(line);
    const now = Date.now();
    const signed = signCertificate(options.signer ?? ca, {
      publicKey,
      type: options.type ?? 'host',
      keyId: 'keyway-host:releases',
      principals: hostnames,
      validAfter: new Date(now - 60_000),
      validBefore: new Date(now + options.validForMs),
      serial: 1n,
    });
    return {
      certificate: signed.line,
      serial: '1',
      key_id: 'keyway-host:releases',
      principals: hostnames,
      valid_after: new Date(now - 60_000).toISOString(),
      valid_before: new Date(now + options.validForMs).toISOString(),
    };
  };
  return { issue, calls };
}

describe('the SFTP host identity (a host certificate from PAS for a key made at start)', () => {
  it('asks once for a 90-day certificate and waits (a timer longer than 24.8 days would fire at once)', async () => {
    const pas = issuer({ validForMs: 90 * DAY });
    const identity = await hostIdentity({ hostnames: ['localhost'], issue: pas.issue, logger: silentLogger });
    await sleep(300);
    expect(pas.calls).toHaveLength(1);
    expect(identity.certificate().length).toBeGreaterThan(100);
    identity.close();
  });

  it('takes PAS refusing the host names as configuration (exit 78 at start), not as an outage to wait out', async () => {
    const started = Date.now();
    const refused = hostIdentity({
      hostnames: ['sftp.example'],
      issue: () => Promise.reject(new ApiError(403, 'access_denied', 'PAS certifies hosts only as localhost; not sftp.example')),
      logger: silentLogger,
    });
    await expect(refused).rejects.toBeInstanceOf(ConfigError);
    await expect(refused).rejects.toThrow(/SSH_HOST_CERT_NAMES/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('refuses an answer that is not a host certificate for its key, valid now', async () => {
    for (const wrong of [{ otherKey: true }, { type: 'user' as const }, { validForMs: -1000 }]) {
      const pas = issuer({ validForMs: DAY, ...wrong });
      await expect(hostIdentity({ hostnames: ['localhost'], issue: pas.issue, logger: silentLogger, startWaitMs: 0 })).rejects.toThrow(/no host certificate from PAS/);
    }
  });
});
