import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

// Two deployments: one without a reuse leeway (every replay revokes), one with a leeway generous
// enough that concurrent duplicates on a loaded machine still fall inside it.
let suite: Suite;
let lenientSuite: Suite;
beforeAll(async () => {
  [suite, lenientSuite] = await Promise.all([startSuite({ redisUrl: REDIS_URL, refreshReuseLeewaySec: 0 }), startSuite({ redisUrl: REDIS_URL, refreshReuseLeewaySec: 30 })]);
});
afterAll(() => Promise.all([suite?.close(), lenientSuite?.close()]));

const refresh = (token: string, scope?: string, on: Suite = suite) => rawClient(on, 'pas').post('/oauth2/token', form({ grant_type: 'refresh_token', refresh_token: token, scope }), { headers: FORM });

describe('grant_type=refresh_token with rotation (RFC 6749 §6, RFC 9700 §4.14)', () => {
  it('returns a new access token and a rotated refresh token in the same family', async () => {
    const { email } = await provisionTenant(suite);
    const first = await suite.pas.password(email, PASSWORD);
    const response = await refresh(first.refresh_token);
    expect(response.status).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.data).toMatchObject({ token_type: 'Bearer', expires_in: 1200, refresh_expires_in: 1209600, scope: first.scope });
    const [before, after] = [decodeJwt(first.refresh_token), decodeJwt(response.data.refresh_token)];
    expect(after.fid).toBe(before.fid);
    expect(after.jti).not.toBe(before.jti);
    expect(decodeJwt(response.data.access_token).fid).toBe(before.fid);
  });

  it('revokes the whole family when a spent refresh token is presented again', async () => {
    const { email } = await provisionTenant(suite);
    const first = await suite.pas.password(email, PASSWORD);
    const second = (await refresh(first.refresh_token)).data;
    const replay = await refresh(first.refresh_token);
    expect(replay.status).toBe(400);
    expect(replay.data.error).toBe('invalid_grant');
    // The legitimate holder's newer token dies with the family.
    const afterReuse = await refresh(second.refresh_token);
    expect(afterReuse.status).toBe(400);
    expect(afterReuse.data.error).toBe('invalid_grant');
    const sas = await rawClient(suite, 'pac').post('/v1/sas', { refresh_token: second.refresh_token });
    expect(sas.status).toBe(401);
  });

  it('refuses a duplicate within the reuse leeway without revoking the family', async () => {
    const { email } = await provisionTenant(lenientSuite);
    const first = await lenientSuite.pas.password(email, PASSWORD);
    const second = (await refresh(first.refresh_token, undefined, lenientSuite)).data;
    const duplicate = await refresh(first.refresh_token, undefined, lenientSuite);
    expect(duplicate.status).toBe(400);
    expect(duplicate.data.error).toBe('invalid_grant');
    expect((await refresh(second.refresh_token, undefined, lenientSuite)).status).toBe(200);
  });

  it('lets exactly one of concurrent refreshes of the same token win, and the winner keeps working', async () => {
    const { email } = await provisionTenant(lenientSuite);
    const first = await lenientSuite.pas.password(email, PASSWORD);
    const answers = await Promise.all(Array.from({ length: 12 }, () => refresh(first.refresh_token, undefined, lenientSuite)));
    const winners = answers.filter((a) => a.status === 200);
    expect(winners).toHaveLength(1);
    expect(answers.filter((a) => a.status === 400 && a.data.error === 'invalid_grant')).toHaveLength(11);
    expect((await refresh(winners[0]!.data.refresh_token, undefined, lenientSuite)).status).toBe(200);
  });

  it('without a leeway, even the losers of a concurrent refresh are replays, and the family is revoked', async () => {
    const { email } = await provisionTenant(suite);
    const first = await suite.pas.password(email, PASSWORD);
    const answers = await Promise.all(Array.from({ length: 6 }, () => refresh(first.refresh_token)));
    const winners = answers.filter((a) => a.status === 200);
    expect(winners).toHaveLength(1);
    // Losers that arrive after the rotation are replays of a spent token, which revokes the family.
    const late = await refresh(first.refresh_token);
    expect(late.status).toBe(400);
    expect((await refresh(winners[0]!.data.refresh_token)).status).toBe(400);
  });

  it('may narrow the scope but never widen it', async () => {
    const { email } = await provisionTenant(suite, { feeds: ['edr-events', 'dns-logs'] });
    const narrow = await suite.pas.password(email, PASSWORD, 'feed:edr-events');
    const widened = await refresh(narrow.refresh_token, 'feed:edr-events feed:dns-logs');
    expect(widened.status).toBe(400);
    expect(widened.data.error).toBe('invalid_scope');
    const both = await suite.pas.password(email, PASSWORD);
    const narrowed = await refresh(both.refresh_token, 'feed:dns-logs');
    expect(narrowed.status).toBe(200);
    expect(narrowed.data.scope).toBe('feed:dns-logs');
  });

  it('refuses garbage and access tokens as refresh tokens with invalid_grant', async () => {
    const { email } = await provisionTenant(suite);
    const pair = await suite.pas.password(email, PASSWORD);
    for (const token of ['garbage', pair.access_token]) {
      const response = await refresh(token);
      expect(response.status).toBe(400);
      expect(response.data.error).toBe('invalid_grant');
    }
  });
});
