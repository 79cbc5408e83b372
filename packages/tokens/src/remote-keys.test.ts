import { describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { issueRefreshToken, KeyRing, lowS, remoteKeySet, TokenError, verifyRefreshToken } from './index.ts';
import { subject as feedUser, testSettings } from './test-fixtures.ts';

const settings = testSettings({ accessTtlSec: 60, refreshTtlSec: 60, clockToleranceSec: 0 });
const subject = { ...feedUser, fid: 'f-1' };

describe('remoteKeySet (a verifier’s cached view of the issuer’s JWKS)', () => {
  async function setup() {
    const ring = await KeyRing.generate();
    const clock = { ms: Date.now() };
    let loads = 0;
    const keys = remoteKeySet(
      async () => {
        loads += 1;
        return ring.jwks(clock.ms);
      },
      { cooldownMs: 1000, maxAgeMs: 5000, now: () => clock.ms },
    );
    const verify = (token: string) =>
      verifyRefreshToken(token, keys, { issuer: settings.issuer, audience: settings.refreshAudience, clockToleranceSec: 0, now: () => clock.ms }).then(
        () => 'accepted',
        (err: unknown) => (err instanceof TokenError ? err.code : Promise.reject(err)),
      );
    return { ring, clock, verify, loads: () => loads };
  }

  it('loads once and serves verifications from the cache', async () => {
    const { ring, verify, loads } = await setup();
    const token = (await issueRefreshToken(ring.signer(), settings, subject)).token;
    expect(await verify(token)).toBe('accepted');
    expect(await verify(token)).toBe('accepted');
    expect(loads()).toBe(1);
  });

  it('reloads on an unknown kid at most once per cooldown, so a rotated key is picked up', async () => {
    const { ring, clock, verify, loads } = await setup();
    expect(await verify((await issueRefreshToken(ring.signer(), settings, subject)).token)).toBe('accepted');
    const stranger = await KeyRing.generate();
    expect(await verify((await issueRefreshToken(stranger.signer(), settings, subject)).token)).toBe('ERR_TOKEN_KID');
    expect(loads()).toBe(1);
    clock.ms += 1000;
    // Rotate twice without the verifier noticing: the new active key was never in its cache.
    await ring.rotate(60_000, clock.ms);
    await ring.rotate(60_000, clock.ms);
    expect(await verify((await issueRefreshToken(ring.signer(), settings, subject)).token)).toBe('accepted');
    expect(loads()).toBe(2);
  });

  it('drops a key the issuer withdrew once the cache is older than maxAgeMs', async () => {
    const { ring, clock, verify, loads } = await setup();
    const retiring = ring.active();
    expect(await verify((await issueRefreshToken(ring.signer(), { ...settings, now: () => clock.ms }, subject)).token)).toBe('accepted');
    await ring.rotate(2000, clock.ms);
    clock.ms += 3000;
    expect(ring.jwks(clock.ms).keys.map((k) => k.kid)).not.toContain(retiring.kid);
    // A fresh token signed by the withdrawn key (only its private key can make one) must stop verifying.
    const forged = await signAt(retiring, clock.ms);
    // Still cached (younger than maxAgeMs): the verifier has not seen the withdrawal yet.
    expect(await verify(forged)).toBe('accepted');
    clock.ms += 5000;
    expect(await verify(forged)).toBe('ERR_TOKEN_KID');
    expect(loads()).toBe(2);
  });
});

/** A refresh token signed by one particular key of a ring, whatever the ring's active key is now. */
async function signAt(key: ReturnType<KeyRing['active']>, atMs: number): Promise<string> {
  const iat = Math.floor(atMs / 1000);
  const token = await new SignJWT({ ...subject })
    .setProtectedHeader({ alg: 'ES256', typ: 'rt+jwt', kid: key.kid })
    .setIssuer(settings.issuer)
    .setAudience(settings.refreshAudience)
    .setJti('late')
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + 60)
    .sign(key.privateKey);
  return lowS(token);
}
