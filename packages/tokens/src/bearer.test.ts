import { describe, expect, it } from 'vitest';
import { accessTokenChecker, issueAccessToken, KeyRing, operatorTokenChecker } from './index.ts';
import { testSettings } from './test-fixtures.ts';

const settings = testSettings({ adminAudiences: ['https://entitlement.test'], accessTtlSec: 60, refreshTtlSec: 60, clockToleranceSec: 0 });
const subject = { sub: 'u1', tid: 'vendor', roles: ['operator'], scope: 'operator', client_id: 'keyway-importer', fid: 'f-1' };

async function setup(cacheMs = 5000) {
  const ring = await KeyRing.generate();
  const clock = { ms: Date.now() };
  const state = { active: true, asked: 0 };
  const check = accessTokenChecker({
    issuer: settings.issuer,
    audience: 'https://entitlement.test',
    clockToleranceSec: 0,
    now: () => clock.ms,
    keys: ring.localKeySet(),
    isActive: async () => {
      state.asked += 1;
      return state.active;
    },
    cacheMs,
  });
  const s = { ...settings, now: () => clock.ms };
  const operatorToken = async () => (await issueAccessToken(ring.signer(), s, subject, [settings.accessAudience, ...settings.adminAudiences!])).token;
  return { ring, clock, state, check, operatorToken, s };
}

describe('accessTokenChecker (bearer access tokens at an admin API)', () => {
  it('accepts a token naming this audience among others (RFC 8707), and reuses the issuer’s answer within the cache time', async () => {
    const { check, state, operatorToken, clock } = await setup();
    const token = await operatorToken();
    expect(await check(token)).toMatchObject({ active: true, claims: { sub: 'u1', roles: ['operator'], aud: ['https://pac.test', 'https://entitlement.test'] } });
    state.active = false;
    expect((await check(token)).active).toBe(true);
    expect(state.asked).toBe(1);
    clock.ms += 5001;
    expect(await check(token)).toEqual({ active: false, reason: 'ERR_TOKEN_INACTIVE' });
    expect(state.asked).toBe(2);
  });

  it('answers inactive, without asking the issuer, for a token of another audience, an expired one or a forged one', async () => {
    const { check, state, ring, s, clock } = await setup();
    const feedToken = (await issueAccessToken(ring.signer(), s, { ...subject, roles: ['full-control'], scope: 'feed:edr-events' })).token;
    expect(await check(feedToken)).toEqual({ active: false, reason: 'ERR_TOKEN_CLAIM' });
    const other = await KeyRing.generate();
    const forged = (await issueAccessToken(other.signer(), s, subject, 'https://entitlement.test')).token;
    expect((await check(forged)).active).toBe(false);
    const expiring = (await issueAccessToken(ring.signer(), s, subject, 'https://entitlement.test')).token;
    clock.ms += 61_000;
    expect(await check(expiring)).toEqual({ active: false, reason: 'ERR_TOKEN_EXPIRED' });
    expect(state.asked).toBe(0);
  });

  it('rejects when the issuer cannot say (the caller fails closed)', async () => {
    const ring = await KeyRing.generate();
    const check = accessTokenChecker({
      issuer: settings.issuer,
      audience: settings.accessAudience,
      clockToleranceSec: 0,
      keys: ring.localKeySet(),
      isActive: () => Promise.reject(new Error('PAS did not answer')),
    });
    const token = (await issueAccessToken(ring.signer(), settings, subject)).token;
    await expect(check(token)).rejects.toThrow('PAS did not answer');
  });
});

describe('operatorTokenChecker (PAS operator tokens at the entitlement service and PAC)', () => {
  it('wants "aud" to name this service, asks PAS by introspection and reuses its answer for operatorTokenCacheMs', async () => {
    const ring = await KeyRing.generate();
    const clock = { ms: Date.now() };
    const introspected: string[] = [];
    let active = true;
    const check = operatorTokenChecker(
      { pasIssuer: settings.issuer, publicUrl: 'https://entitlement.test', clockToleranceSec: 0, now: () => clock.ms, operatorTokenCacheMs: 1000 },
      {
        keys: ring.localKeySet(),
        introspect: async (token) => {
          introspected.push(token);
          return { active };
        },
      },
    );
    const s = { ...settings, now: () => clock.ms };
    const token = (await issueAccessToken(ring.signer(), s, subject, [settings.accessAudience, ...settings.adminAudiences!])).token;
    expect(await check(token)).toMatchObject({ active: true, claims: { sub: 'u1', roles: ['operator'] } });
    active = false;
    expect((await check(token)).active).toBe(true);
    clock.ms += 1001;
    expect(await check(token)).toEqual({ active: false, reason: 'ERR_TOKEN_INACTIVE' });
    expect(introspected).toEqual([token, token]);
    // a token for PAC alone does not name this service: refused before PAS is asked
    expect(await check((await issueAccessToken(ring.signer(), s, subject)).token)).toEqual({ active: false, reason: 'ERR_TOKEN_CLAIM' });
    expect(introspected).toHaveLength(2);
  });
});
