import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dpopSigner, topicClient, type DpopSigner } from '@keyway/clients';
import { createDpopProof, generateDpopKey, type DpopKey } from '@keyway/tokens';
import { BROKERS, expectErrorBody, expectRefusal, PUBLIC_BASE_URL, startTopic, type Harness } from '../testing/harness.ts';

/** RFC 9449 at the topic service: a SAS key PAC minted for a DPoP key needs a proof by that key on every request. */
describe.each(BROKERS)('SAS guard with DPoP-bound keys (%s broker)', { timeout: 20_000 }, (kind) => {
  let h: Harness;
  let agentKey: DpopKey;
  beforeAll(async () => {
    h = await startTopic(kind);
    agentKey = await generateDpopKey();
  });
  afterAll(() => h.close());

  /**
   * The agent's client. Proofs name the URL the service is published at (htu), as an agent behind a
   * load balancer calls it; the harness listens elsewhere, so the signer is told the public origin.
   */
  const agentClient = (key: DpopKey) => {
    const signer = dpopSigner(key);
    const published: DpopSigner = { ...signer, proof: (method, url, credential) => signer.proof(method, url.replace(h.url, PUBLIC_BASE_URL), credential) };
    return topicClient({ baseUrl: h.url, caPem: h.caPem, timeoutMs: 20_000, dpop: published });
  };
  const publishUrl = (topic: { tenant: string; topic: string }) => `/tenants/${topic.tenant}/topics/${topic.topic}/messages`;
  const proofFor = (key: DpopKey, topic: { tenant: string; topic: string }, sasKey: string) => createDpopProof(key, { htm: 'POST', htu: `${PUBLIC_BASE_URL}${publishUrl(topic)}`, credential: sasKey });

  it('a bound key without a proof is 401 invalid_dpop_proof with a DPoP challenge', async () => {
    const topic = h.newTopic();
    const sasKey = topic.sas('listen-send');
    h.bind(sasKey, agentKey.jkt);
    const response = await h.http.post(publishUrl(topic), topic.batch(), { headers: { authorization: sasKey } });
    expectErrorBody(response, 401, 'invalid_dpop_proof');
    expect(response.headers['www-authenticate']).toMatch(/^DPoP error="invalid_dpop_proof"/);
  });

  it('with a proof by its key the bound key publishes (201), receives and completes; each request its own proof', async () => {
    const topic = h.newTopic();
    const sasKey = topic.sas('listen-send');
    h.bind(sasKey, agentKey.jkt);
    const agent = agentClient(agentKey);
    await expect(agent.publish(sasKey, topic.batch())).resolves.toMatchObject({ tenant: topic.tenant });
    const message = await agent.receive(sasKey, topic.tenant, topic.topic, 'default', 5);
    expect(message).not.toBeNull();
    await agent.complete(sasKey, topic.tenant, topic.topic, 'default', message!.message_id, message!.lock_token);
  });

  it('a replayed proof is 401 (jti single use), and so is a proof by another key (the thief’s own)', async () => {
    const topic = h.newTopic();
    const sasKey = topic.sas('send');
    h.bind(sasKey, agentKey.jkt);
    const proof = await proofFor(agentKey, topic, sasKey);
    const send = (dpop: string) => h.http.post(publishUrl(topic), topic.batch(), { headers: { authorization: sasKey, dpop } });
    expect((await send(proof)).status).toBe(201);
    const replayed = await send(proof);
    expectErrorBody(replayed, 401, 'invalid_dpop_proof');
    expect(replayed.headers['www-authenticate']).toMatch(/^DPoP /);
    const thief = await generateDpopKey();
    expectErrorBody(await send(await proofFor(thief, topic, sasKey)), 401, 'invalid_dpop_proof');
    await expectRefusal(agentClient(thief).publish(sasKey, topic.batch()), 401, 'invalid_dpop_proof');
  });

  it('a proof for another SAS key (ath) is refused', async () => {
    const topic = h.newTopic();
    const sasKey = topic.sas('send');
    h.bind(sasKey, agentKey.jkt);
    const response = await h.http.post(publishUrl(topic), topic.batch(), { headers: { authorization: sasKey, dpop: await proofFor(agentKey, topic, topic.sas('listen-send')) } });
    expectErrorBody(response, 401, 'invalid_dpop_proof');
  });

  it('an unbound key (a producer’s, Azure tooling) keeps working without a proof', async () => {
    const topic = h.newTopic();
    await expect(h.client.publish(topic.sas('send'), topic.batch())).resolves.toBeDefined();
  });
});
