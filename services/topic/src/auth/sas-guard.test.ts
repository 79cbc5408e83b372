import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROKERS, expectErrorBody, expectRefusal, hex, startTopic, type Harness } from '../testing/harness.ts';

describe.each(BROKERS)('SAS guard (%s broker)', { timeout: 20_000 }, (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTopic(kind);
  });
  afterAll(() => h.close());

  it('refuses a request without Authorization with 401 invalid_token and a SharedAccessSignature challenge', async () => {
    const topic = h.newTopic();
    const response = await h.http.post(`/tenants/${topic.tenant}/topics/${topic.topic}/messages`, topic.batch());
    expectErrorBody(response, 401, 'invalid_token');
    expect(response.headers['www-authenticate']).toBe('SharedAccessSignature');
  });

  it('refuses an Authorization header that is not a SharedAccessSignature with 401', async () => {
    const topic = h.newTopic();
    await expectRefusal(h.client.publish('Bearer abc.def.ghi', topic.batch()), 401, 'invalid_token');
    await expectRefusal(h.client.publish('SharedAccessSignature sr=x&sig=y', topic.batch()), 401, 'invalid_token');
  });

  it('accepts send for publish and listen for receive, with the primary or the secondary key', async () => {
    const owner = h.newTenant();
    const topic = h.newTopic(owner);
    await expect(h.client.publish(topic.sas('send'), topic.batch())).resolves.toMatchObject({ tenant: topic.tenant, topic: topic.topic });
    await expect(h.client.publish(topic.sas('listen-send', { namespaceKey: owner.secondary }), topic.batch())).resolves.toBeDefined();
    const message = await h.client.receive(topic.sas('listen', { namespaceKey: owner.secondary }), topic.tenant, topic.topic, 'default', 5);
    expect(message?.batch.tenant).toBe(topic.tenant);
  });

  it('a listen key cannot publish (403)', async () => {
    const topic = h.newTopic();
    await expectRefusal(h.client.publish(topic.sas('listen'), topic.batch()), 403, 'insufficient_scope');
  });

  it('a send key cannot receive or settle (403)', async () => {
    const topic = h.newTopic();
    await expectRefusal(h.client.receive(topic.sas('send'), topic.tenant, topic.topic, 'default', 0), 403, 'insufficient_scope');
    const lockToken = randomUUID();
    await expectRefusal(h.client.complete(topic.sas('send'), topic.tenant, topic.topic, 'default', 'b-1', lockToken), 403, 'insufficient_scope');
    await expectRefusal(h.client.abandon(topic.sas('send'), topic.tenant, topic.topic, 'default', 'b-1', lockToken), 403, 'insufficient_scope');
    await expectRefusal(h.client.renewLock(topic.sas('send'), topic.tenant, topic.topic, 'default', 'b-1', lockToken), 403, 'insufficient_scope');
  });

  it("tenant A's genuine key on tenant B's topic is 403, and so is a key for another topic of the same tenant", async () => {
    const owner = h.newTenant();
    const a = h.newTopic(owner);
    const b = h.newTopic();
    await expectRefusal(h.client.publish(a.sas('listen-send'), b.batch()), 403, 'insufficient_scope');
    await expectRefusal(h.client.receive(a.sas('listen-send'), b.tenant, b.topic, 'default', 0), 403, 'insufficient_scope');
    const sibling = h.newTopic(owner);
    await expectRefusal(h.client.publish(a.sas('send'), sibling.batch()), 403, 'insufficient_scope');
  });

  it('a key signed with another namespace key (a forgery) is 401, even when it names the right topic', async () => {
    const topic = h.newTopic();
    await expectRefusal(h.client.publish(topic.sas('send', { namespaceKey: hex(32) }), topic.batch()), 401, 'invalid_token');
  });

  it('an expired key is 401', async () => {
    const topic = h.newTopic();
    await expectRefusal(h.client.publish(topic.sas('send', { expiresInSec: -60 }), topic.batch()), 401, 'invalid_token');
  });

  it('a tampered key is 401: changed signature, expiry or rights', async () => {
    const topic = h.newTopic();
    const key = topic.sas('listen');
    const sig = /sig=([^&]+)/.exec(key)![1]!;
    const flipped = decodeURIComponent(sig).replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
    await expectRefusal(h.client.receive(key.replace(sig, encodeURIComponent(flipped)), topic.tenant, topic.topic, 'default', 0), 401, 'invalid_token');
    await expectRefusal(h.client.receive(key.replace(/se=\d+/, 'se=99999999999'), topic.tenant, topic.topic, 'default', 0), 401, 'invalid_token');
    await expectRefusal(h.client.publish(key.replace('skn=listen', 'skn=listen-send'), topic.batch()), 401, 'invalid_token');
  });

  it('a key for a tenant PAC does not know is 401', async () => {
    const topic = h.newTopic();
    h.tenantKeys.delete(topic.tenant);
    await expectRefusal(h.client.publish(topic.sas('send'), topic.batch()), 401, 'invalid_token');
  });

  it('fails closed with 503 temporarily_unavailable when PAC cannot check the signature', async () => {
    const topic = h.newTopic();
    h.unreachable.add(topic.tenant);
    const response = await h.http.post(`/tenants/${topic.tenant}/topics/${topic.topic}/messages`, topic.batch(), {
      headers: { authorization: topic.sas('send') },
    });
    expectErrorBody(response, 503, 'temporarily_unavailable');
    expect(response.headers['retry-after']).toBe('5');
    h.unreachable.delete(topic.tenant);
    await expect(h.client.publish(topic.sas('send'), topic.batch())).resolves.toBeDefined();
  });

  it('takes a key signed with a rotated tenant key at once, and stops the replaced key as soon as it sees the rotation', async () => {
    const owner = h.newTenant();
    const topic = h.newTopic(owner);
    const old = topic.sas('send');
    await expect(h.client.publish(old, topic.batch())).resolves.toBeDefined();
    // rotation: the secondary is promoted, a new secondary is created
    const rotated = hex(32);
    h.tenantKeys.set(owner.tenant, [owner.secondary, rotated]);
    h.generations.set(owner.tenant, 1);
    await expect(h.client.publish(topic.sas('send', { namespaceKey: rotated, expiresInSec: 120 }), topic.batch())).resolves.toBeDefined();
    // the verdict on the old key predates the rotation the topic service has now seen: asked again, refused
    await expectRefusal(h.client.publish(old, topic.batch()), 401, 'invalid_token');
    await expectRefusal(h.client.publish(topic.sas('send', { namespaceKey: owner.primary, expiresInSec: 90 }), topic.batch()), 401, 'invalid_token');
  });

  it('refuses path names that are not slugs with 400 invalid_request', async () => {
    const topic = h.newTopic();
    const response = await h.http.post(`/tenants/Not_A_Slug/topics/${topic.topic}/messages`, topic.batch(), {
      headers: { authorization: topic.sas('send') },
    });
    expectErrorBody(response, 400, 'invalid_request');
    const receive = await h.http.post(`/tenants/${topic.tenant}/topics/${topic.topic}/subscriptions/Bad.Sub/messages/head`, undefined, {
      headers: { authorization: topic.sas('listen') },
      params: { timeout: 0 },
    });
    expectErrorBody(receive, 400, 'invalid_request');
  });
});
