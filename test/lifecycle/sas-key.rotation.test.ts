import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, pacClient } from '@keyway/clients';
import { tenantKeys } from '@keyway/pac';
import { verifySas } from '@keyway/sas';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

/**
 * design.md, "Tokens and keys": each tenant has a primary and a secondary SAS key "so that keys
 * rotate without downtime"; rotating one never breaks a subscriber holding a key signed by the
 * other. Real RabbitMQ underneath: a producer publishes continuously and a subscriber receives and
 * completes continuously while the operator rotates the secondary, then the primary.
 */

describe('tenant SAS key rotation under traffic', { timeout: 90_000 }, () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
  });
  afterAll(() => suite?.close());

  // as PAC reads them: sealed at rest under the suite's keyring
  const storedKeys = async (tenant: string) => (await tenantKeys(suite.records.pac, suite.kek).find(tenant))!;
  /** whether the SAS key verifies with exactly this one namespace key */
  const signedWith = (sasKey: string, resource: string, namespaceKey: string) => {
    try {
      verifySas(sasKey, { resource, right: sasKey.endsWith('skn=send') ? 'send' : 'listen', keys: [namespaceKey] });
      return true;
    } catch {
      return false;
    }
  };

  async function until(condition: () => boolean, what: string, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  }

  it('keeps subscribers of one key receiving while the other rotates, and breaks exactly the keys of the rotated one', async () => {
    const { tenant, feed, email } = await provisionTenant(suite);
    const tokens = await suite.pas.password(email, PASSWORD);
    const mint = async (rights: 'listen' | 'send') => (await suite.pac.sas({ refresh_token: tokens.refresh_token, rights })).sas_key;
    const resource = `${suite.urls.topic}/tenants/${tenant}/topics/${feed}`;

    const listenPrimary = await mint('listen');
    const sendPrimary = await mint('send');
    const original = await storedKeys(tenant);
    expect(signedWith(listenPrimary, resource, original.primary)).toBe(true);
    expect(signedWith(sendPrimary, resource, original.primary)).toBe(true);

    // Traffic: a producer publishing every 50 ms and a subscriber receiving and completing, each with its own key.
    const published: string[] = [];
    const received = new Set<string>();
    const errors: string[] = [];
    const keys = { send: sendPrimary, listen: listenPrimary };
    const running = { producer: true, subscriber: true };
    const producer = (async () => {
      for (let seq = 0; running.producer && seq < 2000; seq += 1) {
        const batch = makeBatch(tenant, feed, seq);
        try {
          await suite.topic.publish(keys.send, batch);
          published.push(batch.id);
        } catch (err) {
          errors.push(`publish ${seq}: ${String(err)}`);
        }
        await sleep(50);
      }
    })();
    const subscribe = () =>
      (async () => {
        for (let i = 0; running.subscriber && i < 2000; i += 1) {
          const key = keys.listen;
          try {
            const message = await suite.topic.receive(key, tenant, feed, 'default', 1);
            if (!message) continue;
            await suite.topic.complete(key, tenant, feed, 'default', message.message_id, message.lock_token);
            received.add(message.batch.id);
          } catch (err) {
            errors.push(`receive ${i}: ${String(err)}`);
          }
        }
      })();
    let subscriber = subscribe();
    await until(() => received.size >= 5, 'the first batches');

    // Rotate the secondary: new SAS keys are signed with it; the primary-signed subscriber does not notice.
    expect(await suite.pacOperator.rotateSasKey(tenant, 'secondary')).toEqual({ tenant, rotated: 'secondary', signing_with: 'secondary' });
    const afterSecondary = await storedKeys(tenant);
    expect(afterSecondary).toEqual({ primary: original.primary, secondary: expect.any(String), signWith: 'secondary', generation: 1 });
    expect(afterSecondary.secondary).not.toBe(original.secondary);
    // The topic service's internal endpoint vouches for keys signed with either; it answers no key material.
    const topicView = pacClient({ caPem: suite.pki.ca.certPem, clientCert: suite.pki.certs.topic, baseUrl: suite.urls.pac });
    expect(await topicView.verifySasKey(listenPrimary)).toEqual({ valid: true, key_id: expect.any(String), resource, key_name: 'listen', expiry: expect.any(Number), generation: 1 });
    const receivedAtSecondaryRotation = received.size;
    await until(() => received.size >= receivedAtSecondaryRotation + 5, 'batches after the secondary rotation');

    // A key signed with the new secondary verifies right away: PAC checks each key the topic service has not seen.
    const listenSecondary = await mint('listen');
    const sendSecondary = await mint('send');
    expect(signedWith(listenSecondary, resource, afterSecondary.secondary)).toBe(true);
    expect(signedWith(sendSecondary, resource, afterSecondary.secondary)).toBe(true);
    expect(signedWith(sendSecondary, resource, afterSecondary.primary)).toBe(false);
    const early = makeBatch(tenant, feed, 10_000);
    await expect(suite.topic.publish(sendSecondary, early)).resolves.toMatchObject({ id: early.id });
    published.push(early.id);

    // From here on, traffic runs on secondary-signed keys only.
    keys.send = sendSecondary;
    running.subscriber = false;
    await subscriber;
    running.subscriber = true;
    keys.listen = listenSecondary;
    subscriber = subscribe();
    const receivedBeforePrimary = received.size;
    await until(() => received.size >= receivedBeforePrimary + 3, 'batches with the secondary-signed subscriber');

    // Rotate the primary: new keys are signed with the new primary and verify right away...
    expect(await suite.pacOperator.rotateSasKey(tenant, 'primary')).toEqual({ tenant, rotated: 'primary', signing_with: 'primary' });
    const afterPrimary = await storedKeys(tenant);
    expect(afterPrimary).toEqual({ primary: expect.any(String), secondary: afterSecondary.secondary, signWith: 'primary', generation: 2 });
    expect(afterPrimary.primary).not.toBe(original.primary);
    const sendNewPrimary = await mint('send');
    expect(signedWith(sendNewPrimary, resource, afterPrimary.primary)).toBe(true);
    const late = makeBatch(tenant, feed, 20_000);
    await expect(suite.topic.publish(sendNewPrimary, late)).resolves.toMatchObject({ id: late.id });
    published.push(late.id);

    // ...the keys signed with the old primary are refused (401): the topic service has seen a verdict
    // from the new generation of the tenant's keys, so it asks again about older ones...
    const listenRefused = await suite.topic.receive(listenPrimary, tenant, feed, 'default', 0).catch((err: unknown) => err);
    expect(listenRefused).toBeInstanceOf(ApiError);
    expect(listenRefused).toMatchObject({ status: 401, code: 'invalid_token' });
    const sendRefused = await rawClient(suite, 'topic').post(`/tenants/${tenant}/topics/${feed}/messages`, makeBatch(tenant, feed, 30_000), {
      headers: { authorization: sendPrimary },
    });
    expect(sendRefused.status).toBe(401);
    expect(sendRefused.data).toMatchObject({ error: 'invalid_token', error_description: expect.any(String) });

    // ...and the secondary-signed producer and subscriber carry on across the primary rotation.
    const receivedAtPrimaryRotation = received.size;
    await until(() => received.size >= receivedAtPrimaryRotation + 5, 'batches after the primary rotation');
    running.producer = false;
    await producer;
    await until(() => published.every((id) => received.has(id)), 'every published batch to be received');
    running.subscriber = false;
    await subscriber;
    expect(errors).toEqual([]);
  });

  it('answers operators only, and refuses unknown tenants and malformed bodies', async () => {
    const { tenant, email } = await provisionTenant(suite);
    const rotate = (caller: string | undefined, body: unknown, who = tenant) => rawClient(suite, 'pac', caller).post(`/admin/v1/tenants/${who}/sas-keys/rotate`, body);

    // No keys before the first SAS key is minted: nothing to rotate.
    expect((await rotate('operator', { key: 'primary' })).status).toBe(404);
    await suite.pac.sas({ refresh_token: (await suite.pas.password(email, PASSWORD)).refresh_token, rights: 'listen' });
    const before = await suite.records.pac.get(`tenant-keys:${tenant}`);

    for (const [caller, body, status, error] of [
      [undefined, { key: 'primary' }, 401, 'invalid_client'],
      ['topic', { key: 'primary' }, 403, 'access_denied'],
      ['operator', { key: 'tertiary' }, 400, 'invalid_request'],
      ['operator', {}, 400, 'invalid_request'],
    ] as const) {
      const response = await rotate(caller, body);
      expect({ caller, body, status: response.status, error: response.data.error }).toEqual({ caller, body, status, error });
      expect(response.data.error_description).toEqual(expect.any(String));
    }
    const unknown = await rotate('operator', { key: 'primary' }, 'no-such-tenant');
    expect(unknown.status).toBe(404);
    expect(unknown.data.error).toBe('not_found');
    expect(await suite.records.pac.get(`tenant-keys:${tenant}`)).toBe(before);

    const ok = await rotate('operator', { key: 'secondary' });
    expect(ok.status).toBe(200);
    expect(ok.headers['cache-control']).toBe('no-store');
    expect(ok.data).toEqual({ tenant, rotated: 'secondary', signing_with: 'secondary' });
  });
});
