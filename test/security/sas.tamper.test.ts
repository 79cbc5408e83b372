import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signSas } from '@keyway/sas';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
});
afterAll(() => suite?.close());

async function keysFor(rights: 'listen' | 'send' | 'listen-send') {
  const t = await provisionTenant(suite);
  const tokens = await suite.pas.password(t.email, PASSWORD);
  const sas = await suite.pac.sas({ refresh_token: tokens.refresh_token, rights });
  return { ...t, sas };
}

const publish = (tenant: string, topic: string, key: string, batch = makeBatch(tenant, topic, 1)) =>
  rawClient(suite, 'topic').post(`/tenants/${tenant}/topics/${topic}/messages`, batch, { headers: { authorization: key } });
const receive = (tenant: string, topic: string, key: string) =>
  rawClient(suite, 'topic').post(`/tenants/${tenant}/topics/${topic}/subscriptions/default/messages/head?timeout=0`, undefined, { headers: { authorization: key } });

describe('the topic service checks every SAS key', () => {
  it('refuses tenant A’s key on tenant B’s topic with 403', async () => {
    const a = await keysFor('listen-send');
    const b = await keysFor('listen-send');
    const published = await publish(b.tenant, b.feed, a.sas.sas_key, makeBatch(b.tenant, b.feed, 1));
    expect(published.status).toBe(403);
    expect(published.data.error).toBe('insufficient_scope');
    expect((await receive(b.tenant, b.feed, a.sas.sas_key)).status).toBe(403);
  });

  it('refuses a listen key that tries to publish, and a send key that tries to receive, with 403', async () => {
    const listen = await keysFor('listen');
    expect((await publish(listen.tenant, listen.feed, listen.sas.sas_key)).status).toBe(403);
    const send = await keysFor('send');
    expect((await receive(send.tenant, send.feed, send.sas.sas_key)).status).toBe(403);
    expect((await publish(send.tenant, send.feed, send.sas.sas_key)).status).toBe(201);
  });

  it('refuses an expired or tampered key, or none, with 401 invalid_token', async () => {
    const t = await keysFor('listen-send');
    const namespaceKeys = JSON.parse((await suite.records.pac.get(`tenant-keys:${t.tenant}`))!) as { primary: string };
    const expired = signSas(namespaceKeys.primary, 'listen-send', t.sas.resource, Math.floor(Date.now() / 1000) - 5).sasKey;
    const upgraded = t.sas.sas_key.replace(/se=\d+/, (m) => `se=${Number(m.slice(3)) + 86_400}`);
    const resigned = t.sas.sas_key.replace(/sig=[^&]+/, `sig=${encodeURIComponent(Buffer.alloc(32, 7).toString('base64'))}`);
    for (const [name, key] of [
      ['expired', expired],
      ['longer expiry', upgraded],
      ['other signature', resigned],
      ['not SAS', 'Bearer abc'],
    ] as const) {
      const response = await publish(t.tenant, t.feed, key);
      expect({ name, status: response.status, error: response.data.error }).toEqual({ name, status: 401, error: 'invalid_token' });
    }
    const none = await rawClient(suite, 'topic').post(`/tenants/${t.tenant}/topics/${t.feed}/messages`, makeBatch(t.tenant, t.feed, 1));
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('SharedAccessSignature');
  });
});
