import type { Request, Response } from 'express';
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '@keyway/store';
import { createDpopProof, generateDpopKey } from '@keyway/tokens';
import { dpopGuard, DpopRefused } from './dpop.ts';

const ORIGIN = 'https://pac.example:8444';
const request = (method: string, originalUrl: string, dpop?: string) => ({ method, originalUrl, get: (name: string) => (name === 'dpop' ? dpop : undefined) }) as unknown as Request;
const response = () => {
  const headers: Record<string, string> = {};
  return { headers, res: { setHeader: (name: string, value: string) => (headers[name] = value) } as unknown as Response };
};

describe('dpopGuard: the DPoP edge of PAS, PAC and the topic service', () => {
  it('asks for its nonce, then accepts a proof of the bound key once, for this method and URL', async () => {
    const store = createMemoryStore({ prefix: 't:' });
    const guard = await dpopGuard({ store, publicOrigin: ORIGIN, requireNonce: true, iatWindowSec: 60, resource: false });
    const key = await generateDpopKey();
    const first = await createDpopProof(key, { htm: 'POST', htu: `${ORIGIN}/v1/sas`, credential: 'rt' });
    const refusal = await guard.check(request('POST', '/v1/sas', first), { credential: 'rt', jkt: key.jkt }).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(DpopRefused);
    expect(refusal).toMatchObject({ status: 400, code: 'use_dpop_nonce' });
    const nonce = (refusal as DpopRefused).headers['dpop-nonce'];
    expect(nonce).toBeTruthy();
    const { headers, res } = response();
    guard.offerNonce(res);
    expect(headers['dpop-nonce']).toBe(nonce);
    const proof = await createDpopProof(key, { htm: 'POST', htu: `${ORIGIN}/v1/sas`, credential: 'rt', nonce });
    await expect(guard.check(request('POST', '/v1/sas?x=1', proof), { credential: 'rt', jkt: key.jkt })).resolves.toEqual({ jkt: key.jkt });
    await expect(guard.check(request('POST', '/v1/sas', proof), { credential: 'rt', jkt: key.jkt })).rejects.toMatchObject({ code: 'invalid_dpop_proof' });
  });

  it('a bound credential without a proof, or with two, is refused; an unbound one without a proof passes; a resource answers 401 with a DPoP challenge', async () => {
    const store = createMemoryStore({ prefix: 't:' });
    const guard = await dpopGuard({ store, publicOrigin: ORIGIN, requireNonce: false, iatWindowSec: 60, resource: true });
    const key = await generateDpopKey();
    await expect(guard.check(request('GET', '/x'), {})).resolves.toBeUndefined();
    const missing = await guard.check(request('GET', '/x'), { jkt: key.jkt }).catch((e: unknown) => e);
    expect(missing).toMatchObject({ status: 401, code: 'invalid_dpop_proof' });
    expect((missing as DpopRefused).headers['www-authenticate']).toMatch(/^DPoP error="invalid_dpop_proof"/);
    const proof = await createDpopProof(key, { htm: 'GET', htu: `${ORIGIN}/x` });
    await expect(guard.check(request('GET', '/x', `${proof}, ${proof}`), { jkt: key.jkt })).rejects.toMatchObject({ code: 'invalid_dpop_proof' });
  });

  it('a public URL with a path (behind a path-routing proxy) is what proofs name, plus the request path', async () => {
    const store = createMemoryStore({ prefix: 't:' });
    const guard = await dpopGuard({ store, publicOrigin: `${ORIGIN}/pas/`, requireNonce: false, iatWindowSec: 60, resource: false });
    const key = await generateDpopKey();
    const proof = await createDpopProof(key, { htm: 'POST', htu: `${ORIGIN}/pas/oauth2/token` });
    await expect(guard.check(request('POST', '/oauth2/token', proof), {})).resolves.toEqual({ jkt: key.jkt });
    const origin = await createDpopProof(key, { htm: 'POST', htu: `${ORIGIN}/oauth2/token` });
    await expect(guard.check(request('POST', '/oauth2/token', origin), {})).rejects.toMatchObject({ code: 'invalid_dpop_proof', detail: expect.stringContaining('htu') });
  });

  it('instances sharing a store accept each other’s nonces', async () => {
    const store = createMemoryStore({ prefix: 't:' });
    const one = await dpopGuard({ store, publicOrigin: ORIGIN, requireNonce: true, iatWindowSec: 60, resource: false });
    const two = await dpopGuard({ store, publicOrigin: ORIGIN, requireNonce: true, iatWindowSec: 60, resource: false });
    const { headers, res } = response();
    one.offerNonce(res);
    const key = await generateDpopKey();
    const proof = await createDpopProof(key, { htm: 'POST', htu: `${ORIGIN}/oauth2/token`, nonce: headers['dpop-nonce'] });
    await expect(two.check(request('POST', '/oauth2/token', proof), {})).resolves.toEqual({ jkt: key.jkt });
  });
});
