import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { rawClient } from '../helpers.ts';
import { clientFrom } from './sources.ts';

/**
 * Issue 9, "A username that is not an email answers 500 at the password grant": every input of the
 * token endpoint a caller controls (username, client_id, scope, the assertion and its type) answers an
 * OAuth 4xx, never 500. Each case comes from its own source address, so the login throttle does not
 * stand in for the answer under test.
 */
let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL });
});
afterAll(() => suite?.close());

let next = 10;
const fresh = () => `127.0.1.${next++}`;
const token = (fields: Record<string, string>) => clientFrom(suite, 'pas', fresh()).post('/oauth2/token', form(fields), { headers: FORM });
const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

describe('token endpoint inputs answer 4xx, never 500 (issue 9)', () => {
  it('password grant: usernames that are not emails are invalid_grant, like a wrong password', async () => {
    for (const username of ['not-an-email', 'agent', 'a@b', '@example.com', 'x'.repeat(254), ' ', 'agent@tenant.example\u0000', '\u202eagent@example.com', 'agent@@example.com', '"><script>@x']) {
      const response = await token({ grant_type: 'password', username, password: 'whatever it is' });
      expect({ username, status: response.status, body: response.data }).toEqual({
        username,
        status: 400,
        body: { error: 'invalid_grant', error_description: 'the username or password is incorrect' },
      });
    }
  });

  it('password grant: bad scopes are invalid_scope', async () => {
    for (const scope of ['feed:', 'feed:UPPER', 'operator feed:x', 'admin', 'feed:a b', `feed:${'a'.repeat(100)}`, '\u0000']) {
      const response = await token({ grant_type: 'password', username: 'someone@example.com', password: 'whatever it is', scope });
      expect({ scope, status: response.status, error: response.data.error }).toEqual({ scope, status: 400, error: 'invalid_scope' });
    }
  });

  it('client_credentials: odd client ids, assertions and assertion types are invalid_client or invalid_request', async () => {
    const claims = { iss: 'c', sub: 'c', aud: suite.urls.pas, jti: randomUUID(), exp: Math.floor(Date.now() / 1000) + 60 };
    const assertions = [
      'a',
      'a.b.c',
      '..',
      `${b64('not json')}.${b64('not json')}.`,
      `${b64({ alg: 'ES256' })}.${b64(['an', 'array'])}.${b64('sig')}`,
      `${b64({ alg: 'ES256' })}.${b64({ ...claims, sub: 42 })}.${b64('sig')}`,
      `${b64({ alg: 'ES256', kid: { nested: true } })}.${b64(claims)}.${b64('sig')}`,
      `${b64({ alg: 'ES256', crit: ['x'] })}.${b64(claims)}.${b64('sig')}`,
      `${b64({ alg: 'ES256' })}.${b64({ ...claims, sub: 'x'.repeat(300) })}.${b64('sig')}`,
      `${'A'.repeat(8000)}.${'B'.repeat(100)}.${'C'.repeat(86)}`,
    ];
    for (const client_assertion of assertions) {
      const response = await token({ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion });
      expect({ client_assertion: client_assertion.slice(0, 80), status: response.status, error: response.data.error }).toEqual({
        client_assertion: client_assertion.slice(0, 80),
        status: 401,
        error: 'invalid_client',
      });
    }
    for (const client_id of ['', ' ', 'x'.repeat(254), '../../etc', '\u0000', 'a b']) {
      const response = await token({ grant_type: 'client_credentials', client_id, client_assertion_type: JWT_BEARER, client_assertion: assertions[1] as string });
      expect([400, 401]).toContain(response.status);
      expect(response.data.error).toMatch(/^invalid_(client|request)$/);
    }
    for (const client_assertion_type of ['', 'urn:x', 'x'.repeat(200)]) {
      const response = await token({ grant_type: 'client_credentials', client_assertion_type, client_assertion: assertions[1] as string });
      expect({ status: response.status, error: response.data.error }).toEqual({ status: 401, error: 'invalid_client' });
    }
  });

  it('refresh_token grant: garbage refresh tokens are invalid_grant', async () => {
    for (const refresh_token of ['x', 'a.b.c', `${b64({ alg: 'EdDSA' })}.${b64({})}.`, '\u0000'.repeat(10), 'x'.repeat(8192)]) {
      const response = await token({ grant_type: 'refresh_token', refresh_token });
      expect({ status: response.status, error: response.data.error }).toEqual({ status: 400, error: 'invalid_grant' });
    }
  });

  it('the IdP answers a name that is not an email with a 400 its callers understand, not a 500 (the root)', async () => {
    const response = await rawClient(suite, 'idp', 'pas').post('/v1/credentials/password/verify', { email: 'not-an-email', password: 'x' });
    expect(response.status).toBe(400);
    expect(response.data.error).toBe('invalid_request');
  });
});
