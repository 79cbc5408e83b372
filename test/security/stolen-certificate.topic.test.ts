import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { policyKey } from '@keyway/sas';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

/**
 * Issue 9 (medium): a stolen service certificate had no second line of defence; the topic
 * service's certificate read every tenant's SAS namespace keys, enough to mint any SAS key for any
 * tenant. Now the keys never leave PAC: the topic service asks PAC whether a key's signature is
 * genuine, and answers carry the key's own signed fields, never key material.
 */

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
});
afterAll(() => suite?.close());

async function tenantWithKey() {
  const t = await provisionTenant(suite);
  const tokens = await suite.pas.password(t.email, PASSWORD);
  const sas = await suite.pac.sas({ refresh_token: tokens.refresh_token, rights: 'listen' });
  const stored = JSON.parse((await suite.records.pac.get(`tenant-keys:${t.tenant}`))!) as { primary: string; secondary: string };
  // every secret a leak could carry: the namespace keys and each policy key derived from them
  const secrets = [stored.primary, stored.secondary].flatMap((k) => [k, ...(['listen', 'send', 'listen-send'] as const).map((name) => policyKey(k, name))]);
  return { ...t, sas, secrets };
}

const verify = (caller: string | undefined, sasKey: unknown) => rawClient(suite, 'pac', caller).post('/internal/v1/sas-keys/verify', { sas_key: sasKey });

describe('issue 9: the topic service certificate obtains no SAS key material', () => {
  it('reads no tenant keys: the namespace-key endpoint is gone and the policy-key endpoint is for operators', async () => {
    const t = await tenantWithKey();
    for (const path of [`/internal/v1/tenants/${t.tenant}/sas-keys`, `/admin/v1/tenants/${t.tenant}/sas-policies/listen-send`, `/admin/v1/tenants/${t.tenant}/sas-policies/send`]) {
      const response = await rawClient(suite, 'pac', 'topic').get(path);
      expect({ path, refused: response.status >= 400 && response.status < 500 }).toEqual({ path, refused: true });
      expect(response.data).toMatchObject({ error: expect.any(String), error_description: expect.any(String) });
      for (const secret of t.secrets) expect(JSON.stringify(response.data)).not.toContain(secret);
    }
  });

  it('learns from PAC whether a key is genuine, and the key’s own fields, nothing else', async () => {
    const t = await tenantWithKey();
    const genuine = await verify('topic', t.sas.sas_key);
    expect(genuine.status).toBe(200);
    expect(genuine.headers['cache-control']).toBe('no-store');
    expect(genuine.data).toEqual({ valid: true, key_id: t.sas.key_id, resource: t.sas.resource, key_name: 'listen', expiry: Math.floor(Date.parse(t.sas.expires_at) / 1000), generation: 0 });
    for (const secret of t.secrets) expect(JSON.stringify(genuine.data)).not.toContain(secret);

    const forged = t.sas.sas_key.replace(/sig=[^&]+/, `sig=${encodeURIComponent(Buffer.alloc(32, 7).toString('base64'))}`);
    for (const key of [forged, t.sas.sas_key.replace('%3D', '='), t.sas.sas_key.replace(t.tenant, 'no-such-tenant'), 'Bearer abc']) {
      expect((await verify('topic', key)).data).toEqual({ valid: false });
    }
    const bad = await verify('topic', 42);
    expect(bad.status).toBe(400);
    expect(bad.data.error).toBe('invalid_request');
  });

  it('answers the topic service only: other services’ certificates and anonymous callers are refused', async () => {
    const t = await tenantWithKey();
    for (const caller of ['pas', 'idp', 'entitlement', 'pac', 'operator'] as const) {
      const response = await verify(caller, t.sas.sas_key);
      expect({ caller, status: response.status, error: response.data.error }).toEqual({ caller, status: 403, error: 'access_denied' });
    }
    const anonymous = await verify(undefined, t.sas.sas_key);
    expect(anonymous.status).toBe(401);
    expect(anonymous.data.error).toBe('invalid_client');
  });
});
