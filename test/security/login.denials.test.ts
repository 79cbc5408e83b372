import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL });
});
afterAll(() => suite?.close());

const token = (fields: Record<string, string>) => rawClient(suite, 'pas').post('/oauth2/token', form(fields), { headers: FORM });

describe('PAS refuses what it must refuse, with RFC 6749 error bodies', () => {
  it('gives a wrong password and an unknown user the same 400 invalid_grant (no user enumeration)', async () => {
    const { email } = await provisionTenant(suite);
    const wrong = await token({ grant_type: 'password', username: email, password: 'not the password at all' });
    const unknown = await token({ grant_type: 'password', username: 'nobody@nowhere.example', password: 'not the password at all' });
    expect(wrong.status).toBe(400);
    expect(wrong.data).toEqual({ error: 'invalid_grant', error_description: 'the username or password is incorrect' });
    expect(unknown.status).toBe(wrong.status);
    expect(unknown.data).toEqual(wrong.data);
  });

  it('denies a user holding no role that grants feeds (403 access_denied, role_missing)', async () => {
    const { email } = await provisionTenant(suite, { roles: ['downloader'] });
    const response = await token({ grant_type: 'password', username: email, password: PASSWORD });
    expect(response.status).toBe(403);
    expect(response.data.error).toBe('access_denied');
    expect(response.data.error_description).toContain('role_missing');
  });

  it('denies a feed the tenant is not entitled to (403 access_denied, feed_not_entitled)', async () => {
    const { email } = await provisionTenant(suite, { feeds: ['edr-events'] });
    const response = await token({ grant_type: 'password', username: email, password: PASSWORD, scope: 'feed:dns-logs' });
    expect(response.status).toBe(403);
    expect(response.data).toMatchObject({ error: 'access_denied' });
    expect(response.data.error_description).toContain('feed_not_entitled');
  });

  it('denies a tenant that has no feed at all', async () => {
    const { email } = await provisionTenant(suite, { feeds: [] });
    const response = await token({ grant_type: 'password', username: email, password: PASSWORD });
    expect(response.status).toBe(403);
    expect(response.data.error_description).toContain('no_feeds');
  });

  it('names malformed token requests precisely', async () => {
    const cases: Array<[Record<string, string>, number, string]> = [
      [{}, 400, 'invalid_request'],
      [{ grant_type: 'authorization_code', code: 'x' }, 400, 'invalid_request'],
      [{ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: 'x' }, 400, 'unsupported_grant_type'],
      [{ grant_type: 'password', username: 'a@b.example' }, 400, 'invalid_request'],
      [{ grant_type: 'password', username: 'a@b.example', password: 'x', scope: 'admin' }, 400, 'invalid_scope'],
    ];
    for (const [fields, status, error] of cases) {
      const response = await token(fields);
      expect({ fields, status: response.status, error: response.data.error }).toEqual({ fields, status, error });
      expect(response.data.error_description).toBeTruthy();
    }
    const duplicated = await rawClient(suite, 'pas').post('/oauth2/token', 'grant_type=password&username=a@b.example&password=x&password=y', { headers: FORM });
    expect(duplicated.status).toBe(400);
    expect(duplicated.data).toMatchObject({ error: 'invalid_request', error_description: 'parameter password is included more than once' });
  });
});
