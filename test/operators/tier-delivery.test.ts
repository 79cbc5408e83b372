import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, entitlementClient } from '@keyway/clients';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, rawClient } from '../helpers.ts';

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
});
afterAll(() => suite?.close());

const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

describe('issue 16: a tier’s delivery policy reaches the topic service', () => {
  it('is validated, stored with the tier, answered per feed (the feed’s entry over `*`) to the topic service, and applied there', async () => {
    const tier = unique('tier');
    const refused = await suite.operator.putTier(tier, { name: 'Short', feeds: ['edr-events'], delivery: { '*': { retention_sec: 60 } } }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 400, code: 'invalid_request' });
    expect(await suite.operator.putTier(tier, { name: 'Short', feeds: ['edr-events'], delivery: { '*': { duplicate_window_sec: 8 * 86_400 } } }).catch((err: unknown) => err)).toMatchObject({
      status: 400,
    });

    const delivery = { '*': { retention_sec: 3600, message_ttl_sec: 120, duplicate_window_sec: 300 }, 'edr-events': { duplicate_window_sec: 0 } };
    expect(await suite.operator.putTier(tier, { name: 'Plus', feeds: ['edr-events', 'dns-logs'], delivery })).toMatchObject({ created: true, delivery });
    expect((await suite.operator.getTier(tier)).delivery).toEqual(delivery);

    const tenant = unique('tiered');
    await suite.operator.createTenant({ id: tenant, name: 'Tiered Corp', tier });
    // what the topic service asks (its certificate): the feed's values, `*` filling what the feed's own entry leaves out
    const topicSide = entitlementClient({ baseUrl: suite.urls.entitlement, caPem: suite.pki.ca.certPem, clientCert: suite.pki.certs.topic });
    expect(await topicSide.subscriptionNames(tenant, 'edr-events')).toEqual({ subscriptions: [], delivery: { retention_sec: 3600, message_ttl_sec: 120, duplicate_window_sec: 0 } });
    expect(await topicSide.subscriptionNames(tenant, 'dns-logs')).toEqual({ subscriptions: [], delivery: { retention_sec: 3600, message_ttl_sec: 120, duplicate_window_sec: 300 } });

    // applied by the topic service: edr-events has no duplicate detection, dns-logs has
    const email = `agent@${tenant}.example`;
    await suite.operator.createUser(tenant, { email, password: PASSWORD, roles: ['full-control'] });
    const publishTwice = async (feed: string) => {
      const tokens = await suite.pas.password(email, PASSWORD, `feed:${feed}`);
      const sas = await suite.pac.sas({ refresh_token: tokens.refresh_token, resource: `${suite.urls.topic}/tenants/${tenant}/topics/${feed}`, rights: 'send' });
      const batch = makeBatch(tenant, feed, 1);
      const post = () => rawClient(suite, 'topic').post(`/tenants/${tenant}/topics/${feed}/messages`, batch, { headers: { authorization: sas.sas_key } });
      const first = await post();
      const second = await post();
      return [first.status, second.status, second.data.duplicate];
    };
    expect(await publishTwice('edr-events')).toEqual([201, 201, undefined]);
    expect(await publishTwice('dns-logs')).toEqual([201, 201, true]);
  });
});
