import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { ChangeEvent } from '@keyway/contracts';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { createDpopProof, dpopNonces, generateDpopKey, type DpopKey } from '@keyway/tokens';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

/**
 * Issue 14, DPoP (RFC 9449) at PAS: a pair asked for with a proof is bound to the proof's key, a bound
 * refresh token is worth nothing without that key, and an operator can revoke the key itself.
 */
let suite: Suite;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, refreshReuseLeewaySec: 0 });
});
afterAll(() => suite?.close());

const tokenUrl = () => `${suite.urls.pas}/oauth2/token`;
/** the DPoP-Nonce of PAS's last answer: every token response carries one */
let nonce: string | undefined;

async function token(fields: Record<string, string>, proof?: string) {
  const response = await rawClient(suite, 'pas').post('/oauth2/token', form(fields), { headers: { ...FORM, ...(proof !== undefined && { DPoP: proof }) } });
  nonce = (response.headers['dpop-nonce'] as string | undefined) ?? nonce;
  return response;
}
const proofBy = (key: DpopKey, options: { nonce?: string | undefined; htu?: string } = {}) =>
  createDpopProof(key, { htm: 'POST', htu: options.htu ?? tokenUrl(), nonce: 'nonce' in options ? options.nonce : nonce });
const refresh = (refreshToken: string, proof?: string) => token({ grant_type: 'refresh_token', refresh_token: refreshToken }, proof);
const claims = (jwt: string) => decodeJwt(jwt) as { cnf?: { jkt: string }; fid: string; sub: string };

/** A password login bound to `key`, having fetched the nonce first when none is held. */
async function dpopLogin(email: string, key: DpopKey) {
  let response = await token({ grant_type: 'password', username: email, password: PASSWORD }, await proofBy(key));
  if (response.status === 400 && response.data.error === 'use_dpop_nonce') response = await token({ grant_type: 'password', username: email, password: PASSWORD }, await proofBy(key));
  expect(response.status).toBe(200);
  return response.data as { access_token: string; refresh_token: string; token_type: string };
}

describe('DPoP at PAS (RFC 9449): tokens bound to the agent’s key', () => {
  it('asks for its nonce first (400 use_dpop_nonce with DPoP-Nonce), then binds both tokens to the proof’s key (token_type DPoP, cnf.jkt)', async () => {
    const { email } = await provisionTenant(suite);
    const key = await generateDpopKey();
    const first = await token({ grant_type: 'password', username: email, password: PASSWORD }, await proofBy(key, { nonce: undefined }));
    expect(first.status).toBe(400);
    expect(first.data).toEqual({ error: 'use_dpop_nonce', error_description: expect.stringContaining('nonce') });
    const offered = first.headers['dpop-nonce'] as string;
    expect(offered).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]+$/);

    const answer = await token({ grant_type: 'password', username: email, password: PASSWORD }, await proofBy(key, { nonce: offered }));
    expect(answer.status).toBe(200);
    expect(answer.headers['dpop-nonce']).toEqual(expect.any(String));
    expect(answer.data).toMatchObject({ token_type: 'DPoP', expires_in: 1200, scope: 'feed:edr-events' });
    expect(claims(answer.data.access_token).cnf).toEqual({ jkt: key.jkt });
    expect(claims(answer.data.refresh_token).cnf).toEqual({ jkt: key.jkt });
  });

  it('a login without a proof stays a bearer login; a proof for another URL or a garbage one is 400 invalid_dpop_proof, never a 500', async () => {
    const { email } = await provisionTenant(suite);
    const bearer = await token({ grant_type: 'password', username: email, password: PASSWORD });
    expect(bearer.status).toBe(200);
    expect(bearer.data.token_type).toBe('Bearer');
    expect(claims(bearer.data.refresh_token).cnf).toBeUndefined();
    const key = await generateDpopKey();
    for (const proof of [await proofBy(key, { htu: `${suite.urls.pac}/oauth2/token` }), 'not.a.proof', `${await proofBy(key)}, ${await proofBy(key)}`]) {
      const refused = await token({ grant_type: 'password', username: email, password: PASSWORD }, proof);
      expect(refused.status).toBe(400);
      expect(refused.data.error).toBe('invalid_dpop_proof');
    }
  });

  it('refreshes with a proof by the same key: the new pair stays bound, in the same family', async () => {
    const { email } = await provisionTenant(suite);
    const key = await generateDpopKey('EdDSA');
    const pair = await dpopLogin(email, key);
    const next = await refresh(pair.refresh_token, await proofBy(key));
    expect(next.status).toBe(200);
    expect(next.data.token_type).toBe('DPoP');
    expect(claims(next.data.refresh_token)).toMatchObject({ cnf: { jkt: key.jkt }, fid: claims(pair.refresh_token).fid });
    expect(claims(next.data.access_token).cnf).toEqual({ jkt: key.jkt });
  });

  it('refuses a bound refresh token without a proof, with another key’s, a replayed one or a stale nonce, and none of it ends the agent’s session', async () => {
    const { email, user } = await provisionTenant(suite);
    const key = await generateDpopKey();
    const thief = await generateDpopKey();
    const pair = await dpopLogin(email, key);
    const used = await proofBy(key);
    const current = (await refresh(pair.refresh_token, used)).data.refresh_token as string;

    const expectRefused = async (response: Awaited<ReturnType<typeof refresh>>, error: string) => {
      expect(response.status).toBe(400);
      expect(response.data.error).toBe(error);
    };
    await expectRefused(await refresh(current), 'invalid_dpop_proof');
    await expectRefused(await refresh(current, await proofBy(thief)), 'invalid_dpop_proof');
    await expectRefused(await refresh(current, used), 'invalid_dpop_proof');
    // a nonce PAS issued five minutes ago (its secret, from its store): expired, so a fresh one is asked for
    const secret = Buffer.from((await suite.stores.pas.get('dpop:nonce-secret')) as string, 'base64url');
    const stale = dpopNonces(secret, { now: () => Date.now() - 5 * 60_000 }).current();
    await expectRefused(await refresh(current, await proofBy(key, { nonce: stale })), 'use_dpop_nonce');
    // the spent token, replayed without the key: refused before reuse detection could revoke the family
    await expectRefused(await refresh(pair.refresh_token), 'invalid_dpop_proof');
    await expectRefused(await refresh(pair.refresh_token, await proofBy(thief)), 'invalid_dpop_proof');

    const still = await refresh(current, await proofBy(key));
    expect(still.status).toBe(200);
    expect(still.data.token_type).toBe('DPoP');
    // each refusal is in the trail under the token's subject, with its RFC 9449 code
    const failed = (await suite.auditor.events({ stream: 'pas', action: 'grant.failed', subject: user.id, limit: 50 })).events;
    expect(failed.filter((e) => e.reason === 'invalid_dpop_proof').length).toBeGreaterThanOrEqual(5);
    expect(JSON.stringify(failed)).not.toContain(current);
  });

  it('a bearer family refreshed with a proof is bound from then on and never unbound again', async () => {
    const { email } = await provisionTenant(suite);
    const key = await generateDpopKey();
    const bearer = (await token({ grant_type: 'password', username: email, password: PASSWORD })).data;
    const bound = await refresh(bearer.refresh_token, await proofBy(key));
    expect(bound.status).toBe(200);
    expect(bound.data.token_type).toBe('DPoP');
    expect(claims(bound.data.refresh_token).cnf).toEqual({ jkt: key.jkt });
    expect((await refresh(bound.data.refresh_token)).data.error).toBe('invalid_dpop_proof');
  });

  it('introspection answers cnf.jkt for both tokens of a bound pair (RFC 9449 §6.2)', async () => {
    const { email } = await provisionTenant(suite);
    const key = await generateDpopKey();
    const pair = await dpopLogin(email, key);
    for (const [kind, jwt] of [
      ['refresh_token', pair.refresh_token],
      ['access_token', pair.access_token],
    ] as const) {
      const answer = await rawClient(suite, 'pas', 'pac').post('/oauth2/introspect', form({ token: jwt }), { headers: FORM });
      expect(answer.data).toMatchObject({ active: true, token_type: kind, cnf: { jkt: key.jkt } });
    }
    const bearer = (await token({ grant_type: 'password', username: email, password: PASSWORD })).data;
    const unbound = await rawClient(suite, 'pas', 'pac').post('/oauth2/introspect', form({ token: bearer.refresh_token }), { headers: FORM });
    expect(unbound.data.active).toBe(true);
    expect(unbound.data.cnf).toBeUndefined();
  });

  it('discovery names the proof algorithms', async () => {
    expect((await suite.pas.discovery()).dpop_signing_alg_values_supported).toEqual(['ES256', 'EdDSA']);
  });

  it('an operator revokes a key: its families end, PAS refuses its proofs, the trail and PAC are told (dpop_key.revoked)', async () => {
    const { email, tenant } = await provisionTenant(suite);
    const key = await generateDpopKey();
    const other = await generateDpopKey();
    const [one, two] = [await dpopLogin(email, key), await dpopLogin(email, key)];
    const unaffected = await dpopLogin(email, other);
    // an observer of the change-event topic, as PAC's subscription would see it
    await suite.broker.declareSubscription(suite.changeEventsTopic, 'dpop-observer');

    const operator = rawClient(suite, 'pas', 'operator');
    expect((await rawClient(suite, 'pas').post(`/admin/v1/dpop-keys/${key.jkt}/revoke`)).status).toBe(401);
    expect((await operator.post('/admin/v1/dpop-keys/not-a-thumbprint/revoke')).status).toBe(400);
    const revoked = await operator.post(`/admin/v1/dpop-keys/${key.jkt}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.data).toEqual({ jkt: key.jkt, revoked_families: 2 });

    for (const pair of [one, two]) {
      const refused = await refresh(pair.refresh_token, await proofBy(key));
      expect(refused.status).toBe(400);
      expect(refused.data.error).toBe('invalid_grant');
      const introspected = await rawClient(suite, 'pas', 'pac').post('/oauth2/introspect', form({ token: pair.access_token }), { headers: FORM });
      expect(introspected.data).toEqual({ active: false });
    }
    const login = await token({ grant_type: 'password', username: email, password: PASSWORD }, await proofBy(key));
    expect(login.status).toBe(400);
    expect(login.data).toEqual({ error: 'invalid_dpop_proof', error_description: 'the DPoP key is revoked' });
    expect((await refresh(unaffected.refresh_token, await proofBy(other))).status).toBe(200);
    // idempotent: nothing left to revoke
    expect((await operator.post(`/admin/v1/dpop-keys/${key.jkt}/revoke`)).data).toEqual({ jkt: key.jkt, revoked_families: 0 });

    const trail = (await suite.auditor.events({ stream: 'pas', action: 'dpop_key.revoked', order: 'oldest', limit: 50 })).events.filter((e) => e.detail?.jkt === key.jkt);
    expect(trail[0]).toMatchObject({ outcome: 'success', tenant, detail: { revoked_families: '2' } });
    const seen: ChangeEvent[] = [];
    await expect
      .poll(
        async () => {
          const delivery = await suite.broker.receive(suite.changeEventsTopic, 'dpop-observer', 200);
          if (delivery) {
            seen.push(ChangeEvent.parse(JSON.parse(delivery.body.toString())));
            await delivery.ack();
          }
          return seen.filter((e) => e.type === 'dpop_key.revoked' || (e.type === 'family.revoked' && e.reason === 'dpop_key_revoked')).map((e) => e.type);
        },
        { timeout: 10_000 },
      )
      .toEqual(['dpop_key.revoked', 'family.revoked', 'family.revoked']);
    expect(seen.find((e) => e.type === 'dpop_key.revoked')).toMatchObject({ tenant, jkt: key.jkt, reason: 'dpop_key_revoked' });
    await suite.broker.deleteSubscription(suite.changeEventsTopic, 'dpop-observer');
  });

  it('a family that outlived its key’s revocation (a login in flight meanwhile) is refused at refresh and inactive at introspection', async () => {
    const { email } = await provisionTenant(suite);
    const key = await generateDpopKey();
    const pair = await dpopLogin(email, key);
    // the revocation as PAS's records hold it, written after this family was listed
    await suite.records.pas.set(`dpop-key-revoked:${key.jkt}`, JSON.stringify({ at: new Date().toISOString(), reason: 'test' }));
    const refused = await refresh(pair.refresh_token, await proofBy(key));
    expect(refused.status).toBe(400);
    expect(refused.data).toEqual({ error: 'invalid_dpop_proof', error_description: 'the DPoP key is revoked' });
    for (const jwt of [pair.refresh_token, pair.access_token]) {
      expect((await rawClient(suite, 'pas', 'pac').post('/oauth2/introspect', form({ token: jwt }), { headers: FORM })).data).toEqual({ active: false });
    }
  });
});
