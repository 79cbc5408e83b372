import { createHmac, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { jwtReencodings, withNegatedS } from '@keyway/testkit/reencode';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { verifyClientAssertion, type ClientAssertionAlg, type ClientAssertionPolicy, type ClientKey } from './index.ts';
import { codeOf, ISSUER, nowSec } from './test-fixtures.ts';

const TOKEN_ENDPOINT = `${ISSUER}/oauth2/token`;
const CLIENT = 'user-1';

async function clientKeyPair(alg: ClientAssertionAlg) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, registered: { jwk: await exportJWK(publicKey), alg } satisfies ClientKey };
}

/** A policy over one client's keys and an in-memory jti set, as the IdP wires it to its store. */
function policyFor(keys: Record<string, ClientKey>, overrides: Partial<ClientAssertionPolicy> = {}) {
  const used = new Map<string, number>();
  const policy: ClientAssertionPolicy = {
    audience: [ISSUER, TOKEN_ENDPOINT],
    clockToleranceSec: 30,
    maxLifetimeSec: 300,
    keyFor: async (clientId, kid) => {
      if (clientId !== CLIENT) return undefined;
      if (kid !== undefined) return keys[kid];
      const all = Object.values(keys);
      return all.length === 1 ? all[0] : undefined;
    },
    claimJti: async (clientId, jti, expiresAt) => {
      const key = `${clientId}:${jti}`;
      if (used.has(key)) return false;
      used.set(key, expiresAt);
      return true;
    },
    ...overrides,
  };
  return { policy, used };
}

function assertion(key: CryptoKey, alg: string, claims: JWTPayload = {}, header: Record<string, unknown> = { kid: 'k1' }) {
  const now = nowSec();
  return new SignJWT({ iss: CLIENT, sub: CLIENT, aud: ISSUER, jti: randomUUID(), iat: now, exp: now + 60, ...claims }).setProtectedHeader({ alg, ...header }).sign(key);
}

const b64u = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

describe('RFC 7523 client assertions', () => {
  it.each(['ES256', 'EdDSA'] as const)('accepts a fresh %s assertion once, and refuses its replay', async (alg) => {
    const { privateKey, registered } = await clientKeyPair(alg);
    const { policy, used } = policyFor({ k1: registered });
    const jwt = await assertion(privateKey, alg);
    const verified = await verifyClientAssertion(jwt, policy);
    expect(verified.clientId).toBe(CLIENT);
    // The jti is remembered until the assertion could no longer be valid: exp plus the clock tolerance.
    expect([...used.values()]).toEqual([verified.exp + 30]);
    expect(await codeOf(verifyClientAssertion(jwt, policy))).toBe('ERR_TOKEN_REPLAYED');
  });

  it('accepts the token endpoint URL as the audience, and a header without kid when the client has one key', async () => {
    const { privateKey, registered } = await clientKeyPair('ES256');
    const { policy } = policyFor({ k1: registered });
    expect(await codeOf(assertion(privateKey, 'ES256', { aud: [TOKEN_ENDPOINT] }).then((jwt) => verifyClientAssertion(jwt, policy)))).toBe('accepted');
    expect(await codeOf(assertion(privateKey, 'ES256', {}, {}).then((jwt) => verifyClientAssertion(jwt, policy)))).toBe('accepted');
  });

  it('refuses assertions whose claims break RFC 7523 §3', async () => {
    const { privateKey, registered } = await clientKeyPair('ES256');
    const { policy } = policyFor({ k1: registered });
    const now = nowSec();
    const cases: Array<[string, JWTPayload, string]> = [
      ['another audience', { aud: 'https://elsewhere.test' }, 'ERR_TOKEN_CLAIM'],
      ['expired beyond the tolerance', { iat: now - 400, exp: now - 31 }, 'ERR_TOKEN_EXPIRED'],
      ['exp an hour ahead', { exp: now + 3600 }, 'ERR_TOKEN_CLAIM'],
      ['exp an hour after an old iat', { iat: now - 3500, exp: now + 100 }, 'ERR_TOKEN_CLAIM'],
      ['iat in the future', { iat: now + 120, exp: now + 180 }, 'ERR_TOKEN_NOT_YET_VALID'],
      ['nbf in the future', { nbf: now + 120 }, 'ERR_TOKEN_NOT_YET_VALID'],
      ['iss different from sub', { iss: 'someone-else' }, 'ERR_TOKEN_CLAIM'],
      ['no exp', { exp: undefined }, 'ERR_TOKEN_CLAIM'],
      ['no jti', { jti: undefined }, 'ERR_TOKEN_CLAIM'],
      ['an oversized jti', { jti: 'j'.repeat(257) }, 'ERR_TOKEN_CLAIM'],
    ];
    for (const [name, claims, code] of cases) {
      expect({ name, code: await codeOf(verifyClientAssertion(await assertion(privateKey, 'ES256', claims), policy)) }).toEqual({ name, code });
    }
  });

  it('refuses keys it does not know and signatures by another key', async () => {
    const ours = await clientKeyPair('ES256');
    const stranger = await clientKeyPair('ES256');
    const { policy } = policyFor({ k1: ours.registered });
    expect(await codeOf(verifyClientAssertion(await assertion(stranger.privateKey, 'ES256'), policy))).toBe('ERR_TOKEN_SIGNATURE');
    expect(await codeOf(verifyClientAssertion(await assertion(stranger.privateKey, 'ES256', {}, { kid: 'k2' }), policy))).toBe('ERR_TOKEN_KID');
    const two = policyFor({ k1: ours.registered, k2: stranger.registered }).policy;
    expect(await codeOf(verifyClientAssertion(await assertion(ours.privateKey, 'ES256', {}, {}), two))).toBe('ERR_TOKEN_KID');
  });

  it('refuses alg none, HS256 keyed with the public key, and an algorithm other than the key’s (RFC 8725 §2.1)', async () => {
    const es = await clientKeyPair('ES256');
    const ed = await clientKeyPair('EdDSA');
    const { policy } = policyFor({ k1: es.registered, k2: ed.registered });
    const now = nowSec();
    const claims = { iss: CLIENT, sub: CLIENT, aud: ISSUER, jti: randomUUID(), iat: now, exp: now + 60 };
    const none = `${b64u({ alg: 'none', kid: 'k1' })}.${b64u(claims)}.`;
    const hsInput = `${b64u({ alg: 'HS256', kid: 'k1' })}.${b64u(claims)}`;
    const hs256 = `${hsInput}.${createHmac('sha256', JSON.stringify(es.registered.jwk)).update(hsInput).digest('base64url')}`;
    expect(await codeOf(verifyClientAssertion(none, policy))).toBe('ERR_TOKEN_ALG');
    expect(await codeOf(verifyClientAssertion(hs256, policy))).toBe('ERR_TOKEN_ALG');
    expect(await codeOf(verifyClientAssertion(await assertion(ed.privateKey, 'EdDSA', {}, { kid: 'k1' }), policy))).toBe('ERR_TOKEN_ALG');
    expect(await codeOf(verifyClientAssertion('not.a.jwt', policy))).toBe('ERR_TOKEN_MALFORMED');
  });
});

describe('issue 9: client assertions have one spelling', () => {
  it('refuses a re-encoded assertion as malformed, and the high-s twin of a spent one as a replay', async () => {
    const { privateKey, registered } = await clientKeyPair('ES256');
    const { policy } = policyFor({ k1: registered });
    const jwt = await assertion(privateKey, 'ES256');
    for (const [spelling, variant] of Object.entries(jwtReencodings(jwt))) {
      expect({ spelling, code: await codeOf(verifyClientAssertion(variant, policy)) }).toEqual({ spelling, code: 'ERR_TOKEN_MALFORMED' });
    }
    expect(await codeOf(verifyClientAssertion(jwt, policy))).toBe('accepted');
    // Clients' libraries do not normalize s, so either half verifies; the jti is what is spent.
    expect(await codeOf(verifyClientAssertion(withNegatedS(jwt), policy))).toBe('ERR_TOKEN_REPLAYED');
  });
});
