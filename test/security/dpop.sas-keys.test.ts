import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, dpopSigner, pacClient, topicClient, type DpopSigner } from '@keyway/clients';
import { timeSortableId } from '@keyway/broker';
import type { ChangeEvent } from '@keyway/contracts';
import { loadKeyRing } from '@keyway/pas';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { createDpopProof, generateDpopKey, lowS, type DpopKey, type SigningKey } from '@keyway/tokens';
import { makeBatch, PASSWORD, provisionTenant, rawClient, refusalOf } from '../helpers.ts';

/** design.md: a revocation holds at the topic service within seconds (event → PAC → topic's 2 s cache). */
const BUDGET_MS = 5000;

/**
 * Issue 14, DPoP (RFC 9449) at PAC and the topic service on real services (PostgreSQL, Redis,
 * RabbitMQ): a refresh token bound to the agent's key (cnf.jkt) is of no use at PAC without a proof
 * by that key; the SAS key PAC mints records the key, and the topic service then requires its proofs;
 * revoking the key pair (dpop_key.revoked) revokes the SAS key. Until PAS binds tokens itself (task A),
 * the bound refresh token is PAS's own re-signed with cnf, by PAS's active key.
 */
describe('DPoP-bound credentials at PAC and the topic service', () => {
  let suite: Suite;
  let signingKey: SigningKey;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
    signingKey = (await loadKeyRing(suite.records.pas, suite.kek)).active();
  });
  afterAll(() => suite?.close());

  /** PAS's refresh token with `claims` added, signed as PAS signs (its active key, low s) */
  const resign = async (token: string, claims: JWTPayload) =>
    lowS(await new SignJWT({ ...decodeJwt(token), ...claims }).setProtectedHeader({ alg: 'ES256', typ: 'rt+jwt', kid: signingKey.kid }).sign(signingKey.privateKey));
  const pacFor = (dpop?: DpopSigner) => pacClient({ baseUrl: suite.urls.pac, caPem: suite.pki.ca.certPem, dpop });
  const topicFor = (dpop?: DpopSigner) => topicClient({ baseUrl: suite.urls.topic, caPem: suite.pki.ca.certPem, dpop });
  /** what PAC tells the topic service about a key (its internal status endpoint, the topic service's certificate) */
  const statusOf = async (keyId: string) => (await rawClient(suite, 'pac', 'topic').get(`/internal/v1/sas-keys/${encodeURIComponent(keyId)}`)).data as { revoked: boolean; jkt?: string };

  async function boundSession(agent: DpopKey) {
    const t = await provisionTenant(suite);
    const tokens = await suite.pas.password(t.email, PASSWORD);
    return { ...t, refreshToken: await resign(tokens.refresh_token, { cnf: { jkt: agent.jkt } }) };
  }

  it('PAC: a bound refresh token without a proof, or with a proof by another key, is 400 invalid_dpop_proof; with the agent’s proof and PAC’s nonce it mints a key bound to it', async () => {
    const agent = await generateDpopKey();
    const thief = await generateDpopKey();
    const { refreshToken } = await boundSession(agent);
    const request = { refresh_token: refreshToken, rights: 'listen' as const };

    const bare = await rawClient(suite, 'pac').post('/v1/sas', request);
    expect(bare.status).toBe(400);
    expect(bare.data).toMatchObject({ error: 'invalid_dpop_proof' });
    expect(await refusalOf(pacFor(dpopSigner(thief)).sas(request))).toMatchObject({ status: 400, code: 'invalid_dpop_proof' });

    // RFC 9449 §8: a proof without PAC's nonce is answered with one
    const proof = await createDpopProof(agent, { htm: 'POST', htu: `${suite.urls.pac}/v1/sas`, credential: refreshToken });
    const noNonce = await rawClient(suite, 'pac').post('/v1/sas', request, { headers: { dpop: proof } });
    expect(noNonce.status).toBe(400);
    expect(noNonce.data).toMatchObject({ error: 'use_dpop_nonce' });
    expect(noNonce.headers['dpop-nonce']).toEqual(expect.any(String));

    // the agent's client answers use_dpop_nonce itself (one retry)
    const minted = await pacFor(dpopSigner(agent)).sas(request);
    expect(await statusOf(minted.key_id)).toEqual({ key_id: minted.key_id, revoked: false, jkt: agent.jkt });
  });

  it('the topic service: the bound SAS key without a proof or with the thief’s is 401 (DPoP challenge), with the agent’s 201; a replayed proof 401', async () => {
    const agent = await generateDpopKey();
    const thief = await generateDpopKey();
    const { tenant, feed, refreshToken } = await boundSession(agent);
    const { sas_key: sasKey } = await pacFor(dpopSigner(agent)).sas({ refresh_token: refreshToken, rights: 'listen-send' });
    const url = `/tenants/${tenant}/topics/${feed}/messages`;

    const bare = await rawClient(suite, 'topic').post(url, makeBatch(tenant, feed, 1), { headers: { authorization: sasKey } });
    expect(bare.status).toBe(401);
    expect(bare.data).toMatchObject({ error: 'invalid_dpop_proof' });
    expect(bare.headers['www-authenticate']).toMatch(/^DPoP error="invalid_dpop_proof"/);
    expect(await refusalOf(topicFor(dpopSigner(thief)).publish(sasKey, makeBatch(tenant, feed, 2)))).toMatchObject({ status: 401, code: 'invalid_dpop_proof' });

    await expect(topicFor(dpopSigner(agent)).publish(sasKey, makeBatch(tenant, feed, 3))).resolves.toMatchObject({ tenant });
    const proof = await createDpopProof(agent, { htm: 'POST', htu: `${suite.urls.topic}${url}`, credential: sasKey });
    const once = await rawClient(suite, 'topic').post(url, makeBatch(tenant, feed, 4), { headers: { authorization: sasKey, dpop: proof } });
    expect(once.status).toBe(201);
    const replayed = await rawClient(suite, 'topic').post(url, makeBatch(tenant, feed, 5), { headers: { authorization: sasKey, dpop: proof } });
    expect(replayed.status).toBe(401);
    expect(replayed.data).toMatchObject({ error: 'invalid_dpop_proof' });
  });

  it('an unbound refresh token with a proof gets a key bound to the proven key; without one, a bearer key as before', async () => {
    const agent = await generateDpopKey();
    const t = await provisionTenant(suite);
    const { refresh_token: first } = await suite.pas.password(t.email, PASSWORD);
    const bound = await pacFor(dpopSigner(agent)).sas({ refresh_token: first, rights: 'listen' });
    expect((await statusOf(bound.key_id)).jkt).toBe(agent.jkt);
    const { refresh_token: second } = await suite.pas.password(t.email, PASSWORD);
    const bearer = await pacFor().sas({ refresh_token: second, rights: 'listen-send' });
    expect((await statusOf(bearer.key_id)).jkt).toBeUndefined();
    await expect(topicFor().publish(bearer.sas_key, makeBatch(t.tenant, t.feed, 1))).resolves.toBeDefined();
  });

  it('dpop_key.revoked (PAS, an operator revoking the key pair): PAC revokes the bound SAS keys, and the topic service refuses them within seconds', async () => {
    const agent = await generateDpopKey();
    const { tenant, feed, refreshToken } = await boundSession(agent);
    const { sas_key: sasKey, key_id: keyId } = await pacFor(dpopSigner(agent)).sas({ refresh_token: refreshToken, rights: 'listen-send' });
    const topic = topicFor(dpopSigner(agent));
    let seq = 0;
    const status = async () => {
      try {
        await topic.publish(sasKey, makeBatch(tenant, feed, ++seq));
        return 201;
      } catch (err) {
        if (err instanceof ApiError) return err.status;
        throw err;
      }
    };
    expect(await status()).toBe(201);

    const event: ChangeEvent = { id: timeSortableId(), at: new Date().toISOString(), type: 'dpop_key.revoked', tenant, jkt: agent.jkt, reason: 'operator' };
    const startedAt = Date.now();
    await suite.broker.publish(suite.changeEventsTopic, Buffer.from(JSON.stringify(event)), { messageId: event.id, contentType: 'application/json' });
    let code = await status();
    while (code === 201 && Date.now() - startedAt < BUDGET_MS * 2) {
      await sleep(50);
      code = await status();
    }
    expect(code).toBe(401);
    expect(Date.now() - startedAt).toBeLessThan(BUDGET_MS);
    expect(await statusOf(keyId)).toMatchObject({ revoked: true, jkt: agent.jkt });
  });
});
