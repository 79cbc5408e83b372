import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, REDIS_URL, startSuite, type Suite, type ServiceName } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
});
afterAll(() => suite?.close());

/** Every JSON/form endpoint, with the caller certificate it needs to get past authentication. */
const endpoints: Array<{ service: ServiceName; path: string; caller?: string; type: string }> = [
  { service: 'idp', path: '/v1/credentials/password/verify', caller: 'pas', type: 'application/json' },
  { service: 'entitlement', path: '/v1/authorize', caller: 'pas', type: 'application/json' },
  { service: 'entitlement', path: '/v1/tenants', caller: 'operator', type: 'application/json' },
  { service: 'pas', path: '/oauth2/token', type: 'application/x-www-form-urlencoded' },
  { service: 'pac', path: '/v1/sas', type: 'application/json' },
];

describe('bad input gets a clear 4xx with an error code, never a 500', () => {
  it.each(endpoints)('$service $path', async ({ service, path, caller, type }) => {
    const http = rawClient(suite, service, caller);
    const malformed = await http.post(path, '{"oops": ', { headers: { 'content-type': 'application/json' } });
    const wrongType = await http.post(path, 'hello', { headers: { 'content-type': 'text/plain' } });
    const oversized = await http.post(path, type === 'application/json' ? JSON.stringify({ pad: 'x'.repeat(200_000) }) : `pad=${'x'.repeat(200_000)}`, {
      headers: { 'content-type': type },
    });
    const empty = await http.post(path, '', { headers: { 'content-type': type } });
    // A body that does not parse is refused before any route sees it, whatever the route accepts.
    expect(malformed.status).toBe(400);
    expect(wrongType.status).toBe(415);
    expect(oversized.status).toBe(413);
    expect(empty.status).toBe(400);
    for (const response of [malformed, wrongType, oversized, empty]) {
      expect(response.data).toEqual({ error: expect.any(String), error_description: expect.any(String) });
    }
  });

  it('the topic service refuses malformed, mistyped, oversized and mismatched batches', async () => {
    const t = await provisionTenant(suite);
    const tokens = await suite.pas.password(t.email, PASSWORD);
    const { sas_key } = await suite.pac.sas({ refresh_token: tokens.refresh_token, rights: 'send' });
    const http = rawClient(suite, 'topic');
    const path = `/tenants/${t.tenant}/topics/${t.feed}/messages`;
    const post = (body: unknown, type = 'application/json') => http.post(path, body, { headers: { authorization: sas_key, 'content-type': type } });
    const cases: Array<[string, Awaited<ReturnType<typeof post>>, number]> = [
      ['malformed JSON', await post('{"id": '), 400],
      ['wrong content type', await post('id=1', 'text/plain'), 415],
      ['oversized', await post(JSON.stringify({ ...makeBatch(t.tenant, t.feed, 1), records: ['x'.repeat(1_100_000)] })), 413],
      ['missing records', await post({ ...makeBatch(t.tenant, t.feed, 1), records: undefined }), 400],
      ['other tenant in the body', await post(makeBatch('someone-else', t.feed, 1)), 400],
      ['prototype pollution', await post(`{"id":"b1","tenant":"${t.tenant}","topic":"${t.feed}","seq":1,"createdAt":"${new Date().toISOString()}","records":[{"__proto__":{"admin":true}}]}`), 400],
    ];
    for (const [name, response, status] of cases) {
      expect({ name, status: response.status }).toEqual({ name, status });
      expect(response.data).toEqual({ error: expect.any(String), error_description: expect.any(String) });
    }
  });

  it('internal APIs refuse callers without a Keyway client certificate', async () => {
    const anonymous = await rawClient(suite, 'idp').post('/v1/credentials/password/verify', { email: 'a@b.example', password: 'x' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.data.error).toBe('invalid_client');
    const wrongService = await rawClient(suite, 'idp', 'topic').post('/v1/credentials/password/verify', { email: 'a@b.example', password: 'x' });
    expect(wrongService.status).toBe(403);
    const adminWithoutOperator = await rawClient(suite, 'entitlement', 'pas').post('/v1/tenants', { id: 'x', name: 'x' });
    expect(adminWithoutOperator.status).toBe(403);
  });
});
