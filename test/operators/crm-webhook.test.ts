import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttp } from '@keyway/clients';
import type { CrmDelivery } from '@keyway/contracts';
import { crmSignatureHeader } from '@keyway/entitlement';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, rawClient } from '../helpers.ts';
import { provisionOperator, timeUntil } from './operator.ts';

const SECRET = 'crm-webhook-secret-for-tests-0123456789';
const REVOCATION_BUDGET_MS = 5000;

let suite: Suite;
let basic: string;
let plus: string;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, crmWebhookSecret: SECRET });
  basic = `crm-basic-${randomUUID().slice(0, 6)}`;
  plus = `crm-plus-${randomUUID().slice(0, 6)}`;
  await suite.operator.putTier(basic, { name: 'Basic', feeds: ['edr-events'] });
  await suite.operator.putTier(plus, { name: 'Plus', feeds: ['edr-events', 'dns-logs'] });
});
afterAll(() => suite?.close());

const nowSec = () => Math.floor(Date.now() / 1000);

/** What the CRM sends: the exact bytes, signed over the timestamp, the delivery id header and the body (crm/signature.ts). */
function post(body: string, options: { secret?: string; timestamp?: number; delivery?: string; signature?: string } = {}, target: Suite = suite) {
  const timestamp = String(options.timestamp ?? nowSec());
  const signature = options.signature ?? crmSignatureHeader(options.secret ?? SECRET, timestamp, options.delivery ?? '', Buffer.from(body));
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-keyway-timestamp': timestamp, 'x-keyway-signature': signature };
  if (options.delivery) headers['x-keyway-delivery'] = options.delivery;
  return createHttp({ baseUrl: target.urls.entitlement, caPem: target.pki.ca.certPem }).post('/v1/crm/webhook', Buffer.from(body), { headers });
}

const customer = () => `Cust_${randomUUID().slice(0, 8).toUpperCase()}`;
const tenantOf = (customerId: string) => customerId.toLowerCase().replace(/_/g, '-');

function contract(customerId: string, overrides: Partial<CrmDelivery['contract']> = {}, id = `evt-${randomUUID()}`): { id: string; body: string } {
  const delivery: CrmDelivery = {
    id,
    customer: { id: customerId, name: `Customer ${customerId}` },
    contract: { status: 'active', tier: plus, contacts: [{ email: `soc@${tenantOf(customerId)}.example`, roles: ['full-control'] }], ...overrides },
  };
  return { id, body: JSON.stringify(delivery) };
}

describe('CRM webhook: signed contract sync', () => {
  it('maps a valid delivery onto a tenant (id from the customer id), its tier’s feeds and its contacts as users', async () => {
    const id = customer();
    const delivery = contract(id, {
      contacts: [
        { email: `soc@${tenantOf(id)}.example`, roles: ['full-control'] },
        { email: `ro@${tenantOf(id)}.example`, roles: ['read-only'] },
      ],
    });
    const response = await post(delivery.body);
    expect(response.status).toBe(200);
    const tenant = tenantOf(id);
    expect(response.data).toEqual({ id: delivery.id, duplicate: false, tenant });
    expect(await suite.operator.getTenant(tenant)).toMatchObject({ id: tenant, name: `Customer ${id}`, status: 'active', tier: plus, feeds: ['edr-events', 'dns-logs'], crmCustomerId: id });
    const users = (await suite.operator.listUsers(tenant)).users;
    expect(users.map((u) => [u.email, u.roles])).toEqual([
      [`soc@${tenantOf(id)}.example`, ['full-control']],
      [`ro@${tenantOf(id)}.example`, ['read-only']],
    ]);
    // Created without a password: they set one (an operator does it here) or register a key.
    const soc = users[0]!;
    const noPassword = await rawClient(suite, 'pas').post('/oauth2/token', `grant_type=password&username=${encodeURIComponent(soc.email)}&password=x`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(noPassword.data.error).toBe('invalid_grant');
  });

  it('answers the same delivery again with 200 duplicate and changes nothing; another body under the same id is 409', async () => {
    const id = customer();
    const delivery = contract(id);
    expect((await post(delivery.body)).status).toBe(200);
    const tenant = tenantOf(id);
    // An operator changes something meanwhile; a replay must not undo it.
    await suite.operator.updateTenant(tenant, { name: 'Renamed by an operator' });
    const before = await suite.operator.getTenant(tenant);
    const replay = await post(delivery.body, { timestamp: nowSec() + 1 });
    expect(replay.status).toBe(200);
    expect(replay.data).toEqual({ id: delivery.id, duplicate: true });
    expect(await suite.operator.getTenant(tenant)).toEqual(before);
    expect((await suite.operator.listUsers(tenant)).users).toHaveLength(1);

    const changed = contract(id, { tier: basic }, delivery.id);
    const conflict = await post(changed.body);
    expect(conflict.status).toBe(409);
    expect(conflict.data.error).toBe('conflict');
    expect((await suite.operator.getTenant(tenant)).feeds).toEqual(['edr-events', 'dns-logs']);

    // The id may come in X-Keyway-Delivery instead; naming two different ids is refused.
    const { id: _omitted, ...withoutId } = JSON.parse(contract(id).body) as CrmDelivery;
    const byHeader = await post(JSON.stringify(withoutId), { delivery: `hdr-${randomUUID()}` });
    expect(byHeader.status).toBe(200);
    expect((await post(contract(id).body, { delivery: 'another-id' })).status).toBe(400);
    expect((await post(JSON.stringify(withoutId))).status).toBe(400);
  });

  it('refuses a bad signature, a stale or future timestamp, and missing signature headers with 401, applying nothing', async () => {
    const id = customer();
    const delivery = contract(id);
    const cases = [
      await post(delivery.body, { secret: 'not-the-shared-secret-0123456789abcdef' }),
      await post(delivery.body, { signature: `v1=${'0'.repeat(64)}` }),
      await post(delivery.body, { timestamp: nowSec() - 310 }),
      await post(delivery.body, { timestamp: nowSec() + 310 }),
      await post(delivery.body, { signature: '' }),
    ];
    for (const response of cases) {
      expect(response.status).toBe(401);
      expect(response.data).toEqual({ error: 'invalid_client', error_description: expect.any(String) });
    }
    // A body changed after signing fails too.
    const timestamp = nowSec();
    const signature = crmSignatureHeader(SECRET, String(timestamp), '', Buffer.from(delivery.body));
    expect((await post(delivery.body.replace(plus, basic), { timestamp, signature })).status).toBe(401);
    expect((await rawClient(suite, 'entitlement', 'operator').get(`/v1/tenants/${tenantOf(id)}`)).status).toBe(404);
    // Nothing was claimed either: the genuine delivery still applies.
    expect((await post(delivery.body)).data).toMatchObject({ duplicate: false });
  });

  it('cancelled suspends the tenant (its SAS keys stop within seconds); active again resumes only what the CRM suspended', async () => {
    const id = customer();
    expect((await post(contract(id).body)).status).toBe(200);
    const tenant = tenantOf(id);
    const user = (await suite.operator.listUsers(tenant)).users[0]!;
    await suite.operator.setPassword(tenant, user.id, PASSWORD);
    const tokens = await suite.pas.password(user.email, PASSWORD);
    const sas = await suite.pac.sas({ refresh_token: tokens.refresh_token, rights: 'send' });
    const publish = async () =>
      (await rawClient(suite, 'topic').post(`/tenants/${tenant}/topics/edr-events/messages`, makeBatch(tenant, 'edr-events', 1), { headers: { authorization: sas.sas_key } })).status;
    expect(await publish()).toBe(201);

    expect((await post(contract(id, { status: 'cancelled' }).body)).status).toBe(200);
    expect(await suite.operator.getTenant(tenant)).toMatchObject({ status: 'suspended', suspendedBy: 'crm' });
    expect(await timeUntil(publish, 401, REVOCATION_BUDGET_MS * 2)).toBeLessThan(REVOCATION_BUDGET_MS);

    expect((await post(contract(id, { status: 'active' }).body)).status).toBe(200);
    expect((await suite.operator.getTenant(tenant)).status).toBe('active');

    // An operator's suspension outranks the CRM: "active" does not lift it.
    await suite.operator.suspendTenant(tenant);
    expect((await post(contract(id, { status: 'active' }).body)).status).toBe(200);
    expect(await suite.operator.getTenant(tenant)).toMatchObject({ status: 'suspended', suspendedBy: 'operator' });
    expect((await post(contract(id, { status: 'suspended' }).body)).status).toBe(200);
  });

  it('follows tier and contact changes: feeds left out and roles taken away are removed', async () => {
    const id = customer();
    await post(contract(id).body);
    const tenant = tenantOf(id);
    const email = `soc@${tenantOf(id)}.example`;
    const applied = await post(contract(id, { tier: basic, contacts: [{ email, roles: ['read-only'] }] }).body);
    expect(applied.status).toBe(200);
    expect(await suite.operator.getTenant(tenant)).toMatchObject({ tier: basic, feeds: ['edr-events'] });
    expect((await suite.operator.listUsers(tenant)).users.map((u) => u.roles)).toEqual([['read-only']]);
  });

  it('never manages a tenant it did not create, the vendor tenant, or a contact of another tenant (409), nor grants the operator role (400)', async () => {
    await provisionOperator(suite);
    const manual = `manual-${randomUUID().slice(0, 8)}`;
    await suite.operator.createTenant({ id: manual, name: 'Made by hand', feeds: [] });
    expect((await post(contract(manual).body)).status).toBe(409);
    expect((await post(contract('Vendor').body)).status).toBe(409);
    expect((await post(contract('keyway').body)).status).toBe(409);
    expect((await suite.operator.getTenant(manual)).name).toBe('Made by hand');

    const first = customer();
    await post(contract(first).body);
    const second = customer();
    const stolen = await post(contract(second, { contacts: [{ email: `soc@${tenantOf(first)}.example`, roles: ['full-control'] }] }).body);
    expect(stolen.status).toBe(409);

    const operator = JSON.parse(contract(customer()).body) as { contract: { contacts: Array<{ roles: string[] }> } };
    operator.contract.contacts[0]!.roles = ['operator'];
    expect((await post(JSON.stringify(operator))).status).toBe(400);
    expect((await post(contract('!!!').body)).status).toBe(400);
    expect((await post('{"not": "a contract"}')).status).toBe(400);
  });
});

describe('CRM webhook without CRM_WEBHOOK_SECRET', () => {
  let plain: Suite;
  beforeAll(async () => {
    plain = await startSuite();
  });
  afterAll(() => plain?.close());

  it('answers 404: CRM sync is off', async () => {
    const response = await post(contract(customer()).body, {}, plain);
    expect(response.status).toBe(404);
    expect(response.data.error).toBe('not_found');
  });
});
