import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

/** design.md: a revocation holds at the topic service within seconds (PAS outbox → broker → PAC → topic's 2 s cache). */
const BUDGET_MS = 5000;

/**
 * Finding (issue 9, medium): revoking a refresh family (RFC 7009, reuse detection) left the SAS keys
 * minted from it valid for a day. Every family revocation now reaches PAC, which revokes the keys.
 */
describe('revoking a refresh family revokes the SAS keys minted from it', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, refreshReuseLeewaySec: 0 });
  });
  afterAll(() => suite?.close());

  async function keyFor(refreshToken: string, tenant: string, feed: string, rights: 'listen-send' | 'send' = 'listen-send') {
    const sas = await suite.pac.sas({ refresh_token: refreshToken, rights });
    const status = async () => (await rawClient(suite, 'topic').post(`/tenants/${tenant}/topics/${feed}/messages`, makeBatch(tenant, feed, 1), { headers: { authorization: sas.sas_key } })).status;
    expect(await status()).toBe(201);
    return { sas, status };
  }

  /** Polls until the key is refused (401); answers how long that took, or Infinity past twice the budget. */
  async function timeUntilRefused(status: () => Promise<number>, startedAt: number): Promise<number> {
    for (;;) {
      const code = await status();
      if (code === 401) return Date.now() - startedAt;
      expect(code).toBe(201);
      if (Date.now() - startedAt > BUDGET_MS * 2) return Infinity;
      await sleep(50);
    }
  }

  it('RFC 7009 revocation of the refresh token: the SAS key is refused at the topic service within seconds', async () => {
    const t = await provisionTenant(suite);
    const pair = await suite.pas.password(t.email, PASSWORD);
    const other = await suite.pas.password(t.email, PASSWORD);
    const key = await keyFor(pair.refresh_token, t.tenant, t.feed);
    // (another rights set: two keys for the same resource, rights and expiry second are the same key)
    const untouched = await keyFor(other.refresh_token, t.tenant, t.feed, 'send');

    const started = Date.now();
    const revoked = await rawClient(suite, 'pas').post('/oauth2/revoke', form({ token: pair.refresh_token, token_type_hint: 'refresh_token' }), { headers: FORM });
    expect(revoked.status).toBe(200);
    const took = await timeUntilRefused(key.status, started);
    console.info(`family revocation (RFC 7009) → SAS key refused at the topic service after ${took} ms`);
    expect(took).toBeLessThan(BUDGET_MS);
    // Only that family: the same user's other session keeps its key.
    expect(await untouched.status()).toBe(201);
    // PAC's trail names the key and why its family went (the record follows the revocation by moments).
    await expect
      .poll(async () => (await suite.auditor.events({ tenant: t.tenant, action: 'sas_key.revoked' })).events.find((e) => e.tokenId === key.sas.key_id)?.detail, { timeout: 2000 })
      .toMatchObject({ family: expect.any(String), family_reason: 'client_revocation' });
  });

  it('reuse detection: replaying a spent refresh token revokes the family and its SAS keys', async () => {
    const t = await provisionTenant(suite);
    const first = await suite.pas.password(t.email, PASSWORD);
    const key = await keyFor(first.refresh_token, t.tenant, t.feed);
    const second = await suite.pas.refresh(first.refresh_token);
    const fromSecond = await keyFor(second.refresh_token, t.tenant, t.feed);

    const started = Date.now();
    const replay = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'refresh_token', refresh_token: first.refresh_token }), { headers: FORM });
    expect(replay.data.error).toBe('invalid_grant');
    const took = await timeUntilRefused(key.status, started);
    console.info(`reuse detection → SAS key refused at the topic service after ${took} ms`);
    expect(took).toBeLessThan(BUDGET_MS);
    expect(await timeUntilRefused(fromSecond.status, started)).toBeLessThan(BUDGET_MS);
    // and the family mints no new key
    expect((await rawClient(suite, 'pac').post('/v1/sas', { refresh_token: second.refresh_token })).status).toBe(401);
  });
});
