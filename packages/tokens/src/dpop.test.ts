import { randomBytes } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { createDpopProof, dpopKeyFromPem, dpopKeyToPem, dpopNonces, DpopError, generateDpopKey, tokenHash, verifyDpopProof, type DpopPolicy } from './dpop.ts';

const HTU = 'https://pas.example:8443/oauth2/token';

function policy(overrides: Partial<DpopPolicy> = {}): DpopPolicy {
  const seen = new Set<string>();
  return {
    iatWindowSec: 60,
    claimJti: async (jkt, jti) => {
      const key = `${jkt}:${jti}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    },
    ...overrides,
  };
}

async function refusal(promise: Promise<unknown>): Promise<DpopError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DpopError);
  return err as DpopError;
}

describe('DPoP proofs (RFC 9449)', () => {
  it('a proof verifies for its method and URI and answers the RFC 7638 thumbprint of its key', async () => {
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const key = await generateDpopKey(alg);
      const proof = await createDpopProof(key, { htm: 'post', htu: `${HTU}?ignored=1#frag` });
      await expect(verifyDpopProof(proof, { htm: 'POST', htu: 'https://PAS.example:8443/oauth2/token' }, policy())).resolves.toEqual({ jkt: key.jkt });
      expect(key.jkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
  });

  it('keeps its key across a PEM round trip (the agent’s state file)', async () => {
    const key = await generateDpopKey();
    const again = await dpopKeyFromPem(dpopKeyToPem(key));
    expect(again.jkt).toBe(key.jkt);
    expect(again.publicJwk).toEqual(key.publicJwk);
  });

  it('refuses another method, another URI, a stale iat, a replayed jti, a proof for another credential or another key', async () => {
    const key = await generateDpopKey();
    const other = await generateDpopKey();
    const checks = policy();
    const proof = () => createDpopProof(key, { htm: 'POST', htu: HTU, credential: 'token-a' });
    expect((await refusal(verifyDpopProof(await proof(), { htm: 'GET', htu: HTU, credential: 'token-a' }, checks))).message).toMatch(/htm/);
    expect((await refusal(verifyDpopProof(await proof(), { htm: 'POST', htu: 'https://pac.example:8443/oauth2/token', credential: 'token-a' }, checks))).message).toMatch(/htu/);
    expect((await refusal(verifyDpopProof(await proof(), { htm: 'POST', htu: HTU, credential: 'token-b' }, checks))).message).toMatch(/ath/);
    expect((await refusal(verifyDpopProof(await proof(), { htm: 'POST', htu: HTU, credential: 'token-a', jkt: other.jkt }, checks))).message).toMatch(/another key/);
    const old = await createDpopProof(key, { htm: 'POST', htu: HTU }, Date.now() - 120_000);
    expect((await refusal(verifyDpopProof(old, { htm: 'POST', htu: HTU }, checks))).message).toMatch(/iat/);
    const once = await proof();
    await verifyDpopProof(once, { htm: 'POST', htu: HTU, credential: 'token-a', jkt: key.jkt }, checks);
    expect((await refusal(verifyDpopProof(once, { htm: 'POST', htu: HTU, credential: 'token-a', jkt: key.jkt }, checks))).message).toMatch(/used before/);
  });

  it('refuses a proof without typ dpop+jwt, with a symmetric or private key, with alg none or HS256, or signed by a key other than the one it shows', async () => {
    const key = await generateDpopKey();
    const claims = { htm: 'POST', htu: HTU, jti: 'j1', iat: Math.floor(Date.now() / 1000) };
    const untyped = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', jwk: key.publicJwk }).sign(key.privateKey);
    expect((await refusal(verifyDpopProof(untyped, { htm: 'POST', htu: HTU }, policy()))).message).toMatch(/dpop\+jwt/);
    const secret = randomBytes(32);
    const hmac = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: secret.toString('base64url') } as { kty: string } }).sign(secret);
    expect((await refusal(verifyDpopProof(hmac, { htm: 'POST', htu: HTU }, policy()))).message).toMatch(/algorithm/);
    const withPrivate = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(key.privateKey) }).sign(key.privateKey);
    expect((await refusal(verifyDpopProof(withPrivate, { htm: 'POST', htu: HTU }, policy()))).message).toMatch(/public key/);
    const impostor = await generateKeyPair('ES256');
    const swapped = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk }).sign(impostor.privateKey);
    expect((await refusal(verifyDpopProof(swapped, { htm: 'POST', htu: HTU }, policy()))).message).toMatch(/signature/);
    const [h, p] = swapped.split('.');
    expect((await refusal(verifyDpopProof(`${h}.${p}.`, { htm: 'POST', htu: HTU }, policy()))).message).toMatch(/not a JWT|signature/);
    expect((await refusal(verifyDpopProof('not-a-jwt', { htm: 'POST', htu: HTU }, policy()))).message).toMatch(/not a JWT/);
  });

  it('server nonces: use_dpop_nonce without one, accepted within their window and the next, refused after, and any instance with the secret accepts them', async () => {
    let clock = 1_800_000_000_000;
    const secret = randomBytes(32);
    const nonces = dpopNonces(secret, { windowSec: 60, now: () => clock });
    const otherInstance = dpopNonces(secret, { windowSec: 60, now: () => clock });
    const key = await generateDpopKey();
    const checks = policy({ nonces, now: () => clock });
    const noNonce = await createDpopProof(key, { htm: 'POST', htu: HTU }, clock);
    expect((await refusal(verifyDpopProof(noNonce, { htm: 'POST', htu: HTU }, checks))).code).toBe('use_dpop_nonce');
    const nonce = nonces.current();
    expect(otherInstance.isValid(nonce)).toBe(true);
    await verifyDpopProof(await createDpopProof(key, { htm: 'POST', htu: HTU, nonce }, clock), { htm: 'POST', htu: HTU }, checks);
    clock += 60_000;
    expect(nonces.isValid(nonce)).toBe(true);
    clock += 60_000;
    expect(nonces.isValid(nonce)).toBe(false);
    expect(dpopNonces(randomBytes(32), { now: () => clock }).isValid(nonces.current())).toBe(false);
    for (const junk of ['', '.', 'zz.', `${nonce}.x`, 'ZZZ.abc']) expect(nonces.isValid(junk)).toBe(false);
  });

  it('ath is the base64url SHA-256 of the credential (RFC 9449 §4.2 example)', () => {
    // RFC 9449 §7.1's access token and the ath of its §7.1 proof
    expect(tokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU')).toBe('fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo');
  });
});
