import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { jwtReencodings, sasReencodings, withNegatedS } from '@keyway/testkit/reencode';
import { makeBatch, PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

/**
 * Issue 9 (critical): a revoked credential came back to life when re-encoded. Signature bytes were
 * decoded leniently while the revocation id was derived from the presented string, so each
 * re-spelling of a revoked SAS key verified under an id nobody had revoked. Now only the canonical
 * spelling verifies, and ids come from the decoded bytes.
 */

const REVOCATION_BUDGET_MS = 5000;

let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
});
afterAll(() => suite?.close());

async function grantedAccess() {
  const t = await provisionTenant(suite);
  const tokens = await suite.pas.password(t.email, PASSWORD);
  const sas = await suite.pac.sas({ refresh_token: tokens.refresh_token, rights: 'listen-send' });
  return { ...t, tokens, sas };
}

type Access = Awaited<ReturnType<typeof grantedAccess>>;

const publishStatus = async (t: Access, key: string) =>
  (await rawClient(suite, 'topic').post(`/tenants/${t.tenant}/topics/${t.feed}/messages`, makeBatch(t.tenant, t.feed, 1), { headers: { authorization: key } })).status;
const receiveStatus = async (t: Access, key: string) =>
  (await rawClient(suite, 'topic').post(`/tenants/${t.tenant}/topics/${t.feed}/subscriptions/default/messages/head?timeout=0`, undefined, { headers: { authorization: key } })).status;

/** What the topic service answers each spelling of the key, for publish and receive. */
async function answers(t: Access): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [spelling, key] of Object.entries(sasReencodings(t.sas.sas_key))) out[spelling] = [await publishStatus(t, key), await receiveStatus(t, key)];
  return out;
}
const refusedEverywhere = (spellings: Record<string, number[]>) => Object.fromEntries(Object.keys(spellings).map((s) => [s, [401, 401]]));

const refresh = (token: string) => rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'refresh_token', refresh_token: token }), { headers: FORM });
const mintSas = (token: string) => rawClient(suite, 'pac').post('/v1/sas', { refresh_token: token });

describe('issue 9: a re-encoded SAS key is refused by the topic service, before and after revocation', () => {
  it('refuses every re-spelling of a live key (401 invalid_token) while the key as issued works', async () => {
    const t = await grantedAccess();
    expect(await publishStatus(t, t.sas.sas_key)).toBe(201);
    const seen = await answers(t);
    expect(seen).toEqual(refusedEverywhere(seen));
  });

  it('after the user is deleted (strict revocation), no re-spelling of their key publishes or receives', async () => {
    const t = await grantedAccess();
    await rawClient(suite, 'entitlement', 'operator').delete(`/v1/tenants/${t.tenant}/users/${t.user.id}`);
    const deadline = Date.now() + REVOCATION_BUDGET_MS * 2;
    while ((await publishStatus(t, t.sas.sas_key)) !== 401 && Date.now() < deadline) await sleep(100);
    expect(await publishStatus(t, t.sas.sas_key)).toBe(401);
    const seen = await answers(t);
    expect(seen).toEqual(refusedEverywhere(seen));
  });
});

describe('issue 9: a re-encoded refresh token is refused at PAS and PAC', () => {
  it('refuses a re-spelled live refresh token (it is not the token PAS issued) without touching the session', async () => {
    const t = await grantedAccess();
    for (const [spelling, token] of Object.entries(jwtReencodings(t.tokens.refresh_token))) {
      const [atPas, atPac] = [await refresh(token), await mintSas(token)];
      expect({ spelling, pas: [atPas.status, atPas.data.error], pac: atPac.status }).toEqual({ spelling, pas: [400, 'invalid_grant'], pac: 401 });
    }
    expect((await refresh(t.tokens.refresh_token)).status).toBe(200);
  });

  it('after RFC 7009 revocation, no re-spelling of the refresh token refreshes or mints a SAS key', async () => {
    const t = await grantedAccess();
    expect((await rawClient(suite, 'pas').post('/oauth2/revoke', form({ token: t.tokens.refresh_token, token_type_hint: 'refresh_token' }), { headers: FORM })).status).toBe(200);
    for (const token of [t.tokens.refresh_token, ...Object.values(jwtReencodings(t.tokens.refresh_token))]) {
      expect((await refresh(token)).data.error).toBe('invalid_grant');
      expect((await mintSas(token)).status).toBe(401);
    }
  });

  it('after rotation, no re-spelling of the spent refresh token mints a SAS key or refreshes', async () => {
    const t = await grantedAccess();
    const next = await suite.pas.refresh(t.tokens.refresh_token);
    for (const token of Object.values(jwtReencodings(t.tokens.refresh_token))) {
      expect((await refresh(token)).data.error).toBe('invalid_grant');
      expect((await mintSas(token)).status).toBe(401);
    }
    // a re-spelling is refused before it counts as a replay: the family lives on
    expect((await suite.pac.sas({ refresh_token: next.refresh_token, rights: 'listen' })).sas_key).toBeTruthy();
  });
});

describe('issue 9 (low): an ES256 signature with a high s is refused', () => {
  it('refuses the n - s twin of a genuine refresh token (still a valid ECDSA signature) at PAS and PAC', async () => {
    const t = await grantedAccess();
    const twin = withNegatedS(t.tokens.refresh_token);
    const [atPas, atPac] = [await refresh(twin), await mintSas(twin)];
    expect([atPas.status, atPas.data.error, atPac.status, atPac.data.error]).toEqual([400, 'invalid_grant', 401, 'invalid_token']);
    expect((await refresh(t.tokens.refresh_token)).status).toBe(200);
  });
});
