import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttp } from '@keyway/clients';
import type { CrmDelivery } from '@keyway/contracts';
import { crmSignatureHeader } from '@keyway/entitlement';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';

const SECRET = 'crm-webhook-secret-for-replay-tests-0123';

/** A captured delivery: the exact bytes and headers a CRM sent. */
interface Captured {
  body: string;
  headers: Record<string, string>;
}

/**
 * Finding (issue 9, medium): the CRM webhook's delivery id was not covered by the signature, so a
 * captured delivery replayed under a new id within the timestamp window was applied again (it resumed
 * a cancelled tenant). The sender here signs as a CRM moving to the new scheme would: the old `v1`
 * value (timestamp and body) next to `v2` (timestamp, delivery id and body), so the same capture is
 * valid on the code before and after the fix.
 */
describe('CRM webhook: a captured delivery cannot be replayed or reordered', () => {
  let suite: Suite;
  let tier: string;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL, crmWebhookSecret: SECRET });
    tier = `crm-replay-${randomUUID().slice(0, 6)}`;
    await suite.operator.putTier(tier, { name: 'Replay', feeds: ['edr-events'] });
  });
  afterAll(() => suite?.close());

  const nowSec = () => Math.floor(Date.now() / 1000);
  const send = (captured: Captured) => createHttp({ baseUrl: suite.urls.entitlement, caPem: suite.pki.ca.certPem }).post('/v1/crm/webhook', Buffer.from(captured.body), { headers: captured.headers });

  function sign(customerId: string, status: 'active' | 'cancelled', timestamp: number, delivery = `evt-${randomUUID()}`): Captured {
    const contract: CrmDelivery = {
      customer: { id: customerId, name: `Customer ${customerId}` },
      contract: { status, tier, contacts: [{ email: `soc@${customerId.toLowerCase().replace(/_/g, '-')}.example`, roles: ['full-control'] }] },
    };
    const body = JSON.stringify(contract);
    const ts = String(timestamp);
    const v1 = `v1=${createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}`;
    const signature = `${v1}, ${crmSignatureHeader(SECRET, ts, delivery, Buffer.from(body))}`;
    return { body, headers: { 'content-type': 'application/json', 'x-keyway-timestamp': ts, 'x-keyway-delivery': delivery, 'x-keyway-signature': signature } };
  }

  it('replaying a captured cancel-then-resume sequence under new ids is refused: the tenant stays cancelled', async () => {
    const customer = `Cust_${randomUUID().slice(0, 8).toUpperCase()}`;
    const tenant = customer.toLowerCase().replace(/_/g, '-');
    const t0 = nowSec() - 60;
    expect((await send(sign(customer, 'active', t0))).status).toBe(200);
    const cancel = sign(customer, 'cancelled', t0 + 10);
    const resume = sign(customer, 'active', t0 + 20);
    const cancelAgain = sign(customer, 'cancelled', t0 + 30);
    for (const delivery of [cancel, resume, cancelAgain]) expect((await send(delivery)).data).toMatchObject({ duplicate: false, tenant });
    expect((await suite.operator.getTenant(tenant)).status).toBe('suspended');

    // The attacker replays the captured sequence, each under a fresh delivery id.
    for (const captured of [cancel, resume]) {
      const replay = await send({ ...captured, headers: { ...captured.headers, 'x-keyway-delivery': `evt-${randomUUID()}` } });
      expect(replay.status).toBe(401);
      expect(replay.data).toEqual({ error: 'invalid_client', error_description: expect.any(String) });
      expect((await suite.operator.getTenant(tenant)).status).toBe('suspended');
    }
    // ...or without the id header (the id then comes from the body, which has none): refused too.
    const { 'x-keyway-delivery': _dropped, ...noId } = resume.headers;
    expect((await send({ ...resume, headers: noId })).status).toBe(401);
    // ...or as it was: the same delivery again is a duplicate and changes nothing.
    expect((await send(resume)).data).toMatchObject({ duplicate: true });
    expect((await suite.operator.getTenant(tenant)).status).toBe('suspended');
  });

  it('an older delivery arriving after a newer one never undoes it (reordering): superseded, recorded, nothing applied', async () => {
    const customer = `Cust_${randomUUID().slice(0, 8).toUpperCase()}`;
    const tenant = customer.toLowerCase().replace(/_/g, '-');
    const t0 = nowSec() - 60;
    const resume = sign(customer, 'active', t0 + 20);
    expect((await send(sign(customer, 'active', t0))).status).toBe(200);
    expect((await send(sign(customer, 'cancelled', t0 + 30))).status).toBe(200);
    // a resume signed before the cancel arrives late
    const late = await send(resume);
    expect(late.status).toBe(200);
    expect(late.data).toEqual({ id: resume.headers['x-keyway-delivery'], duplicate: false, superseded: true });
    expect((await suite.operator.getTenant(tenant)).status).toBe('suspended');
    // and a retry of it stays a no-op
    expect((await send(resume)).data).toMatchObject({ duplicate: true });
    const trail = await suite.auditor.events({ action: 'crm.sync', outcome: 'denied' });
    expect(trail.events.some((e) => e.reason === 'superseded' && e.detail?.delivery === resume.headers['x-keyway-delivery'])).toBe(true);
    // a newer resume applies
    expect((await send(sign(customer, 'active', t0 + 40))).data).toMatchObject({ duplicate: false, tenant });
    expect((await suite.operator.getTenant(tenant)).status).toBe('active');
  });
});
