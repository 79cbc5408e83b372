import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '@keyway/clients';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { startClamdServer, type ClamdServer } from '@keyway/testkit/servers';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

/**
 * Issue 13: the releases service in the suite, next to the others, over HTTPS with its own
 * certificate, database role and audit stream. The release flows themselves (uploads, scanning,
 * publish, downloads, authorization at every click) are tested at the service
 * (services/releases/src/releases.test.ts) with a stand-in for the entitlement service's release
 * rights; once those rights exist (PAS scope `releases`, entitlement `access: 'releases'`), this file
 * is where the same flows run on the real chain.
 */
describe('issue 13: the releases service in the suite', () => {
  let suite: Suite;
  let clamd: ClamdServer;

  beforeAll(async () => {
    clamd = await startClamdServer();
    suite = await startSuite({ redisUrl: REDIS_URL, releases: { clamdAddress: clamd.address, clamdStreamMaxLength: '64M' } });
  }, 120_000);
  afterAll(async () => {
    await suite?.close();
    await clamd?.stop();
  });

  it('is ready (its records, its audit stream and clamd answer) and answers the operator certificate at the report', async () => {
    const ready = await rawClient(suite, 'releases').get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.data).toMatchObject({
      status: 'ready',
      checks: expect.arrayContaining([
        { name: 'scanner', ok: true },
        { name: 'audit', ok: true },
      ]),
    });
    expect(await suite.releases.downloadReport({ tenant: 'nobody-yet' })).toEqual({ tenant: 'nobody-yet', downloads: [] });
  });

  it('a feed login’s access token is not for this service (aud), and no credentials is 401', async () => {
    const t = await provisionTenant(suite, { feeds: ['edr-events'] });
    const login = await suite.pas.password(t.email, PASSWORD);
    const refused = await suite.releases.listProducts({ accessToken: login.access_token }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 401, code: 'invalid_token' });
    const anonymous = await suite.releases.listProducts({ accessToken: undefined }).catch((err: unknown) => err);
    expect(anonymous).toMatchObject({ status: 401 });
  });
});
