import { createSasTokenProvider } from '@azure/core-amqp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, provisionTenant, rawClient } from '../helpers.ts';

/**
 * Issue 9 (low): a SAS key could not be minted with Azure's own SDK from a policy key, since Azure
 * keys the HMAC with the key's text (its UTF-8 bytes). Each tenant now has per-right policy keys as
 * Azure shows them; an operator reads one (audited), hands it to a producer, and the producer mints
 * with @azure/core-amqp. Each right has its own key, so a listen key never becomes a send key.
 */

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
});
afterAll(() => suite?.close());

/** What Azure's SDK sends: SharedAccessSignature sr=…&sig=…&se=<now + 1 h>&skn=<key name>. */
async function azureSas(keyName: string, key: string, resource: string): Promise<string> {
  return (await createSasTokenProvider({ sharedAccessKeyName: keyName, sharedAccessKey: key }).getToken(resource)).token;
}

/** The operator's read of one policy's keys (GET /admin/v1/tenants/:t/sas-policies/:key_name). */
async function policyKeys(tenant: string, keyName: 'listen' | 'send') {
  const response = await rawClient(suite, 'pac', 'operator').get(`/admin/v1/tenants/${tenant}/sas-policies/${keyName}`);
  expect(response.status).toBe(200);
  return response.data as { tenant: string; key_name: string; primary_key: string; secondary_key: string };
}

const publish = (tenant: string, feed: string, key: string) =>
  rawClient(suite, 'topic').post(`/tenants/${tenant}/topics/${feed}/messages`, makeBatch(tenant, feed, 1), { headers: { authorization: key } });
const receive = (tenant: string, feed: string, key: string) =>
  rawClient(suite, 'topic').post(`/tenants/${tenant}/topics/${feed}/subscriptions/default/messages/head?timeout=0`, undefined, { headers: { authorization: key } });

describe('issue 9: Azure SDK SAS keys from a tenant’s policy keys', () => {
  it('a producer given the send policy key mints with @azure/core-amqp and publishes (201), with either key', async () => {
    const { tenant, feed } = await provisionTenant(suite);
    const resource = `${suite.urls.topic}/tenants/${tenant}/topics/${feed}`;
    const send = await policyKeys(tenant, 'send');
    expect(send).toEqual({ tenant, key_name: 'send', primary_key: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/), secondary_key: expect.any(String) });
    for (const key of [send.primary_key, send.secondary_key]) {
      const response = await publish(tenant, feed, await azureSas('send', key, resource));
      expect(response.status).toBe(201);
    }
    // a send key does not receive
    expect((await receive(tenant, feed, await azureSas('send', send.primary_key, resource))).status).toBe(403);
  });

  it('a listen key receives, cannot publish, and does not become a send key when skn is changed', async () => {
    const { tenant, feed } = await provisionTenant(suite);
    const resource = `${suite.urls.topic}/tenants/${tenant}/topics/${feed}`;
    const listen = await policyKeys(tenant, 'listen');
    const listenKey = await azureSas('listen', listen.primary_key, resource);
    expect((await receive(tenant, feed, listenKey)).status).toBeLessThan(300);
    const asListen = await publish(tenant, feed, listenKey);
    expect([asListen.status, asListen.data.error]).toEqual([403, 'insufficient_scope']);
    for (const skn of ['send', 'listen-send']) {
      const promoted = await publish(tenant, feed, await azureSas(skn, listen.primary_key, resource));
      expect({ skn, status: promoted.status, error: promoted.data.error }).toEqual({ skn, status: 401, error: 'invalid_token' });
    }
    // and a key of one tenant signs nothing for another
    const other = await provisionTenant(suite);
    const send = await policyKeys(tenant, 'send');
    const elsewhere = await publish(other.tenant, other.feed, await azureSas('send', send.primary_key, `${suite.urls.topic}/tenants/${other.tenant}/topics/${other.feed}`));
    expect(elsewhere.status).toBe(401);
  });

  it('policy keys are for operators only, each read is in the trail without the key, and rotation replaces them', async () => {
    const { tenant, feed } = await provisionTenant(suite);
    for (const caller of [undefined, 'topic', 'pas', 'entitlement'] as const) {
      const response = await rawClient(suite, 'pac', caller).get(`/admin/v1/tenants/${tenant}/sas-policies/send`);
      expect({ caller, status: response.status }).toEqual({ caller, status: caller === undefined ? 401 : 403 });
    }
    const bad = await rawClient(suite, 'pac', 'operator').get(`/admin/v1/tenants/${tenant}/sas-policies/manage`);
    expect([bad.status, bad.data.error]).toEqual([400, 'invalid_request']);

    const before = await rawClient(suite, 'pac', 'operator').get(`/admin/v1/tenants/${tenant}/sas-policies/send`);
    expect(before.headers['cache-control']).toBe('no-store');
    const reads = await suite.auditor.events({ tenant, action: 'sas_policy_keys.read' });
    expect(reads.events).toHaveLength(1);
    expect(reads.events[0]).toMatchObject({ outcome: 'success', detail: { key_name: 'send' } });
    expect(JSON.stringify(reads.events)).not.toContain(before.data.primary_key);

    // rotating the primary namespace key replaces the primary policy keys: Azure SAS keys minted from the old one stop
    const resource = `${suite.urls.topic}/tenants/${tenant}/topics/${feed}`;
    const oldKey = await azureSas('send', before.data.primary_key as string, resource);
    expect((await publish(tenant, feed, oldKey)).status).toBe(201);
    await suite.pacOperator.rotateSasKey(tenant, 'primary');
    const after = await suite.pacOperator.sasPolicyKeys(tenant, 'send');
    expect(after.primary_key).not.toBe(before.data.primary_key);
    expect(after.secondary_key).toBe(before.data.secondary_key);
    expect((await publish(tenant, feed, await azureSas('send', after.primary_key, resource))).status).toBe(201);
    expect((await publish(tenant, feed, oldKey)).status).toBe(401);
  });
});
