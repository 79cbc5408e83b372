import type { AxiosAdapter, AxiosRequestConfig } from 'axios';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jsonResponse, route } from '@keyway/contracts';
import { generateDpopKey, tokenHash, verifyDpopProof } from '@keyway/tokens';
import { dpopSigner } from './dpop.ts';
import { ApiError, createHttp } from './http.ts';
import { routeCaller } from './route.ts';

const sas = route({
  method: 'post',
  path: '/v1/sas',
  summary: 'test route',
  body: { schema: z.object({ refresh_token: z.string() }), types: ['application/x-www-form-urlencoded'] },
  responses: { 200: jsonResponse(z.object({ ok: z.boolean() }), 'minted') },
});

type Answer = { status: number; data: unknown; headers?: Record<string, string> };

/** a route caller over a client whose requests end at an adapter answering `answers` in turn (the last one repeated) */
async function agentAgainst(answers: Answer[]) {
  const signer = dpopSigner(await generateDpopKey());
  const http = createHttp({ baseUrl: 'https://pac.example:8444', caPem: 'unused', dpop: signer });
  const sent: AxiosRequestConfig[] = [];
  const adapter: AxiosAdapter = async (config) => {
    const answer = answers[Math.min(sent.length, answers.length - 1)]!;
    sent.push(config);
    return { statusText: '', headers: {}, config, ...answer };
  };
  http.defaults.adapter = adapter;
  const { call } = routeCaller(http, 'pac', signer);
  const proofs = () => sent.map((config) => String(config.headers?.dpop));
  return { signer, sent, proofs, mint: (token: string) => call(sas, { body: { refresh_token: token } }, { dpopCredential: token }) };
}

/** a proof's claims */
const decodeJwt = (proof: string): Record<string, unknown> => JSON.parse(Buffer.from(proof.split('.')[1]!, 'base64url').toString('utf8'));

const seen = new Set<string>();
const policy = { iatWindowSec: 60, claimJti: async (jkt: string, jti: string) => !seen.has(`${jkt}:${jti}`) && Boolean(seen.add(`${jkt}:${jti}`)) };

describe('DPoP on the agent’s calls (RFC 9449)', () => {
  it('signs a fresh proof for each request: method, URL called, ath of the credential sent', async () => {
    const agent = await agentAgainst([{ status: 200, data: { ok: true } }]);
    await agent.mint('refresh-1');
    await agent.mint('refresh-1');
    const [first, second] = agent.proofs();
    expect(first).not.toBe(second);
    for (const proof of [first!, second!]) {
      await expect(verifyDpopProof(proof, { htm: 'POST', htu: 'https://pac.example:8444/v1/sas', credential: 'refresh-1', jkt: agent.signer.key.jkt }, policy)).resolves.toEqual({
        jkt: agent.signer.key.jkt,
      });
    }
    expect(decodeJwt(first!).ath).toBe(tokenHash('refresh-1'));
  });

  it('answers use_dpop_nonce by sending once more with the server’s nonce, and keeps it for the next request to that server', async () => {
    const agent = await agentAgainst([
      { status: 400, data: { error: 'use_dpop_nonce', error_description: 'nonce' }, headers: { 'dpop-nonce': 'n-1' } },
      { status: 200, data: { ok: true }, headers: { 'dpop-nonce': 'n-2' } },
    ]);
    await expect(agent.mint('refresh-1')).resolves.toEqual({ ok: true });
    await agent.mint('refresh-1');
    expect(agent.proofs().map((proof) => decodeJwt(proof).nonce)).toEqual([undefined, 'n-1', 'n-2']);
  });

  it('retries only once: a second use_dpop_nonce is the answer (a resource server’s 401 challenge too)', async () => {
    const challenge = { status: 401, data: { error: 'use_dpop_nonce' }, headers: { 'dpop-nonce': 'n-x', 'www-authenticate': 'DPoP error="use_dpop_nonce"' } };
    const agent = await agentAgainst([challenge]);
    const refusal = await agent.mint('refresh-1').catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(ApiError);
    expect((refusal as ApiError).code).toBe('use_dpop_nonce');
    expect(agent.sent).toHaveLength(2);
  });

  it('does not retry other refusals', async () => {
    const agent = await agentAgainst([{ status: 400, data: { error: 'invalid_dpop_proof' }, headers: { 'dpop-nonce': 'n-1' } }]);
    await expect(agent.mint('refresh-1')).rejects.toMatchObject({ code: 'invalid_dpop_proof' });
    expect(agent.sent).toHaveLength(1);
  });
});
