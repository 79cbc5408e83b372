import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, FORM, form } from '@keyway/clients';
import { AUDIT_FEED, topicResource, type Rights } from '@keyway/contracts';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { operatorSession, provisionOperator } from '../operators/operator.ts';
import { makeBatch, PASSWORD, provisionTenant, rawClient } from '../helpers.ts';

/**
 * One test per role (design.md, "Roles") through the whole chain: PAS login (the entitlement service
 * answers the rights the role table grants), the tokens (`roles`, `scope`, `rights`), PAC minting
 * exactly those rights, and the topic service accepting or refusing the keys.
 */
describe('each role grants what the role table says, from login to the topic (Redis and RabbitMQ, strict mode)', () => {
  let suite: Suite;
  beforeAll(async () => {
    suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, revocationMode: 'strict' });
  });
  afterAll(() => suite?.close());

  const refusal = (err: unknown) => (err instanceof ApiError ? { status: err.status, code: err.code } : err);
  const mint = (refreshToken: string, rights?: Rights, resource?: string) => suite.pac.sas({ refresh_token: refreshToken, ...(rights && { rights }), ...(resource && { resource }) });
  const claims = (token: string) => decodeJwt(token) as { roles: string[]; scope: string; rights?: Record<string, string> };

  it('full-control: logs in for every feed, listens and sends; the audit feed stays listen-only', async () => {
    const { tenant, feed, email } = await provisionTenant(suite, { feeds: ['edr-events', AUDIT_FEED] });
    const tokens = await suite.pas.password(email, PASSWORD);
    expect(tokens.scope).toBe(`feed:edr-events feed:${AUDIT_FEED}`);
    for (const token of [tokens.access_token, tokens.refresh_token]) {
      expect(claims(token)).toMatchObject({ roles: ['full-control'], scope: tokens.scope, rights: { 'edr-events': 'listen-send', [AUDIT_FEED]: 'listen' } });
    }
    // none asked: all the token grants on the feed
    expect((await mint(tokens.refresh_token)).rights).toBe('listen-send');
    const send = await mint(tokens.refresh_token, 'send');
    const listen = await mint(tokens.refresh_token, 'listen');
    const batch = makeBatch(tenant, feed, 1);
    expect((await suite.topic.publish(send.sas_key, batch)).id).toBe(batch.id);
    expect((await suite.topic.receive(listen.sas_key, tenant, feed, 'default', 5))?.message_id).toBe(batch.id);

    const audit = topicResource(suite.urls.topic, tenant, AUDIT_FEED);
    expect((await mint(tokens.refresh_token, undefined, audit)).rights).toBe('listen');
    const forged = await rawClient(suite, 'pac').post('/v1/sas', { refresh_token: tokens.refresh_token, resource: audit, rights: 'send' });
    expect({ status: forged.status, error: forged.data.error, error_description: forged.data.error_description }).toEqual({
      status: 403,
      error: 'insufficient_scope',
      error_description: 'the audit feed is read-only: ask for the listen right',
    });
  });

  it('read-only: logs in, mints listen (also after a strict refresh), cannot mint send, cannot publish', async () => {
    const { tenant, feed, email } = await provisionTenant(suite, { roles: ['read-only'] });
    const login = await suite.pas.password(email, PASSWORD);
    expect(claims(login.access_token)).toMatchObject({ roles: ['read-only'], scope: 'feed:edr-events', rights: { 'edr-events': 'listen' } });
    const tokens = await suite.pas.refresh(login.refresh_token);
    expect(claims(tokens.refresh_token).rights).toEqual({ 'edr-events': 'listen' });

    const listen = await mint(tokens.refresh_token, 'listen');
    expect(listen.rights).toBe('listen');
    expect((await mint(tokens.refresh_token)).rights).toBe('listen');
    for (const rights of ['send', 'listen-send'] as const) {
      expect(refusal(await mint(tokens.refresh_token, rights).catch((err: unknown) => err))).toEqual({ status: 403, code: 'insufficient_scope' });
    }
    expect(refusal(await suite.topic.publish(listen.sas_key, makeBatch(tenant, feed, 1)).catch((err: unknown) => err))).toEqual({ status: 403, code: 'insufficient_scope' });
    expect(await suite.topic.receive(listen.sas_key, tenant, feed, 'default', 0)).toBeNull();
  });

  it('producer: logs in without full-control, mints send, publishes (201), cannot mint listen nor receive', async () => {
    const { tenant, feed, email } = await provisionTenant(suite, { feeds: ['edr-events', AUDIT_FEED], roles: ['producer'] });
    const tokens = await suite.pas.password(email, PASSWORD);
    // nothing to send on the audit feed: it is not granted at all
    expect(tokens.scope).toBe('feed:edr-events');
    expect(claims(tokens.access_token)).toMatchObject({ roles: ['producer'], rights: { 'edr-events': 'send' } });

    const send = await mint(tokens.refresh_token, 'send');
    expect((await mint(tokens.refresh_token)).rights).toBe('send');
    const published = await rawClient(suite, 'topic').post(`/tenants/${tenant}/topics/${feed}/messages`, makeBatch(tenant, feed, 1), { headers: { authorization: send.sas_key } });
    expect(published.status).toBe(201);
    for (const rights of ['listen', 'listen-send'] as const) {
      expect(refusal(await mint(tokens.refresh_token, rights).catch((err: unknown) => err))).toEqual({ status: 403, code: 'insufficient_scope' });
    }
    expect(refusal(await suite.topic.receive(send.sas_key, tenant, feed, 'default', 0).catch((err: unknown) => err))).toEqual({ status: 403, code: 'insufficient_scope' });
    // asking for the audit feed by name is refused at login
    const audit = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'password', username: email, password: PASSWORD, scope: `feed:${AUDIT_FEED}` }), { headers: FORM });
    expect(audit.status).toBe(403);
    expect(audit.data.error_description).toContain('role_missing');
  });

  it('a user holding no role that grants feeds is refused at login (403 access_denied, role_missing)', async () => {
    const { email } = await provisionTenant(suite, { roles: ['downloader', 'uploader'] });
    const response = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'password', username: email, password: PASSWORD }), { headers: FORM });
    expect(response.status).toBe(403);
    expect(response.data).toEqual({ error: 'access_denied', error_description: 'the user holds no role that grants this login (role_missing)' });
  });

  it('operator: logs in for the admin APIs only, with no feed rights', async () => {
    const { email } = await provisionOperator(suite);
    const session = await operatorSession(suite, email);
    expect(session.tokens.scope).toBe('operator');
    const operator = claims(session.tokens.access_token);
    expect(operator).toMatchObject({ roles: ['operator'], scope: 'operator' });
    expect(operator.rights).toBeUndefined();
    expect((await session.entitlement.listTenants({ limit: 1 })).tenants).toHaveLength(1);
    // a feed login of the same user: the operator role grants no feed
    const feeds = await rawClient(suite, 'pas').post('/oauth2/token', form({ grant_type: 'password', username: email, password: PASSWORD }), { headers: FORM });
    expect(feeds.status).toBe(403);
    expect(feeds.data.error).toBe('access_denied');
  });
});
