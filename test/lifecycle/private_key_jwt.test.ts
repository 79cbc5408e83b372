import { createHmac, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, exportJWK, exportSPKI, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, FORM, form } from '@keyway/clients';
import { createAgent, fileSink } from '@keyway/importer';
import { silentLogger } from '@keyway/kit';
import type { Role } from '@keyway/contracts';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { makeBatch, PASSWORD, provisionTenant, rawClient, waitForLines } from '../helpers.ts';

let suite: Suite;
beforeAll(async () => {
  // One test sends eleven refused assertions for one agent in a row: above the login throttle's default
  // (5 per client and source and minute, test/security/login.throttling.test.ts), which would answer 429.
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, limits: { pas: { loginLimits: { failuresPerAccountSource: 20 } } } });
});
afterAll(() => suite?.close());

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const token = (fields: Record<string, string>) => rawClient(suite, 'pas').post('/oauth2/token', form(fields), { headers: FORM });
const clientCredentials = (assertion: string, extra: Record<string, string> = {}) =>
  token({ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: assertion, ...extra });
const keysPath = (tenant: string, user: string, kid: string) => `/v1/tenants/${tenant}/users/${user}/keys/${kid}`;
const admin = () => rawClient(suite, 'entitlement', 'operator');

async function keyPair(alg: 'ES256' | 'EdDSA') {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, privateKey, publicKey, jwk: await exportJWK(publicKey) };
}

/** A tenant with a full-control agent user holding a registered ES256 key (kid "es") and Ed25519 key (kid "ed"). */
async function agentWithKeys(roles: Role[] = ['full-control']) {
  const t = await provisionTenant(suite, { roles });
  const es = await keyPair('ES256');
  const ed = await keyPair('EdDSA');
  await suite.operator.registerKey(t.tenant, t.user.id, 'es', es.jwk);
  await suite.operator.registerKey(t.tenant, t.user.id, 'ed', ed.jwk);
  return { ...t, clientId: t.user.id, es, ed };
}

/** RFC 7523 §2.2 assertion, signed with jose (an implementation independent of the importer's). */
function assertion(key: CryptoKey, alg: string, kid: string, clientId: string, claims: JWTPayload = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: clientId, sub: clientId, aud: suite.urls.pas, jti: randomUUID(), iat: now, exp: now + 60, ...claims }).setProtectedHeader({ alg, kid }).sign(key);
}

const b64u = (value: string | object) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

describe('passwordless agents: client_credentials with private_key_jwt (RFC 7523)', () => {
  it.each(['es', 'ed'] as const)('issues a pair for a valid assertion signed with the %s key, whose sub and client_id are the user', async (which) => {
    const agent = await agentWithKeys();
    const { privateKey, alg } = agent[which];
    const response = await clientCredentials(await assertion(privateKey, alg, which, agent.clientId), { client_id: agent.clientId });
    expect(response.status).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.data).toMatchObject({ token_type: 'Bearer', expires_in: 1200, scope: 'feed:edr-events' });
    const jwks = createLocalJWKSet(await suite.pas.jwks());
    const access = await jwtVerify(response.data.access_token, jwks, { issuer: suite.urls.pas, audience: suite.urls.pac, typ: 'at+jwt' });
    expect(access.payload).toMatchObject({ sub: agent.user.id, client_id: agent.user.id, tid: agent.tenant, roles: ['full-control'] });
    const refresh = await jwtVerify(response.data.refresh_token, jwks, { issuer: suite.urls.pas, audience: suite.urls.pas, typ: 'rt+jwt' });
    expect(refresh.payload).toMatchObject({ sub: agent.user.id, client_id: agent.user.id });
    // The refresh token is what PAC trades for a SAS key, as for any other login.
    expect((await suite.pac.sas({ refresh_token: response.data.refresh_token })).resource).toContain(`/tenants/${agent.tenant}/topics/edr-events`);
  });

  it('refuses the same assertion a second time (jti replay) with 401 invalid_client', async () => {
    const agent = await agentWithKeys();
    const jwt = await assertion(agent.es.privateKey, 'ES256', 'es', agent.clientId);
    expect((await clientCredentials(jwt)).status).toBe(200);
    const replay = await clientCredentials(jwt);
    expect(replay.status).toBe(401);
    expect(replay.data).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
  });

  it('refuses every assertion that fails an RFC 7523 §3 or RFC 8725 check with the same 401 invalid_client', async () => {
    const agent = await agentWithKeys();
    const stranger = await keyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims: JWTPayload = {}, key = agent.es.privateKey, kid = 'es') => assertion(key, 'ES256', kid, agent.clientId, claims);
    const claims = { iss: agent.clientId, sub: agent.clientId, aud: suite.urls.pas, jti: randomUUID(), iat: now, exp: now + 60 };
    const hsInput = `${b64u({ alg: 'HS256', kid: 'es' })}.${b64u(claims)}`;
    const publicKeyBytes = await exportSPKI(agent.es.publicKey);
    const cases: Array<[string, string, Record<string, string>?]> = [
      ['signed by an unregistered key', await sign({}, stranger.privateKey, 'es')],
      ['signed by a key under an unknown kid', await sign({}, stranger.privateKey, 'nope')],
      ['for another audience', await sign({ aud: 'https://elsewhere.example' })],
      ['expired', await sign({ iat: now - 600, exp: now - 300 })],
      ['exp an hour ahead', await sign({ exp: now + 3600 })],
      ['iss different from sub', await sign({ iss: 'someone-else' })],
      ['HS256 keyed with the public key', `${hsInput}.${createHmac('sha256', publicKeyBytes).update(hsInput).digest('base64url')}`],
      ['alg none', `${b64u({ alg: 'none', kid: 'es' })}.${b64u({ ...claims, jti: randomUUID() })}.`],
      ['a client_id other than the assertion’s', await sign(), { client_id: 'someone-else' }],
    ];
    const responses: Array<[string, Awaited<ReturnType<typeof token>>]> = [];
    for (const [name, jwt, extra] of cases) responses.push([name, await clientCredentials(jwt, extra)]);
    // RFC 6749 §5.2: no client authentication at all, or another method, is invalid_client too.
    responses.push(['no client assertion', await token({ grant_type: 'client_credentials', client_id: agent.clientId })]);
    responses.push(['another assertion type', await clientCredentials(await sign(), { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer' })]);
    for (const [name, response] of responses) {
      expect({ name, status: response.status, body: response.data }).toEqual({
        name,
        status: 401,
        body: { error: 'invalid_client', error_description: 'client authentication failed' },
      });
    }
  });

  it('denies a user holding no role that grants feeds with 403 access_denied', async () => {
    const agent = await agentWithKeys(['downloader']);
    const response = await clientCredentials(await assertion(agent.es.privateKey, 'ES256', 'es', agent.clientId));
    expect(response.status).toBe(403);
    expect(response.data.error).toBe('access_denied');
    expect(response.data.error_description).toContain('role_missing');
  });

  it('registers public keys only, for users of the tenant, at most five, and removes them', async () => {
    const t = await provisionTenant(suite);
    const other = await provisionTenant(suite);
    const es = await keyPair('ES256');
    const put = (jwk: unknown, kid = 'k1', tenant = t.tenant, user = t.user.id) => admin().put(keysPath(tenant, user, kid), { jwk });

    expect((await put(es.jwk)).status).toBe(201);
    expect((await put(es.jwk)).status).toBe(200);
    const { privateKey: privateEc } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const { privateKey: rsa } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const { publicKey: p384 } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const exported = (key: KeyObject) => key.export({ format: 'jwk' }) as JWK;
    for (const [name, jwk] of [
      ['a private EC key', exported(privateEc)],
      ['an RSA key', exported(rsa)],
      ['a P-384 key', exported(p384)],
      ['a point not on the curve', { ...es.jwk, y: es.jwk.x }],
    ] as const) {
      const response = await put(jwk, 'k2');
      expect({ name, status: response.status, error: response.data.error }).toEqual({ name, status: 400, error: 'invalid_request' });
    }
    expect((await put(es.jwk, 'k1', other.tenant)).status).toBe(404);
    expect((await put(es.jwk, 'k1', t.tenant, randomUUID())).status).toBe(404);

    for (const kid of ['k2', 'k3', 'k4', 'k5']) expect((await put((await keyPair('EdDSA')).jwk, kid)).status).toBe(201);
    const sixth = await put(es.jwk, 'k6');
    expect(sixth.status).toBe(409);
    expect(sixth.data.error).toBe('conflict');

    const jwt = await assertion(es.privateKey, 'ES256', 'k1', t.user.id);
    await suite.operator.removeKey(t.tenant, t.user.id, 'k1');
    expect((await clientCredentials(jwt)).status).toBe(401);
    const again = await suite.operator.removeKey(t.tenant, t.user.id, 'k1').catch((err: unknown) => err);
    expect(again).toBeInstanceOf(ApiError);
    expect((again as ApiError).status).toBe(404);
  });

  it('runs the importer agent end to end with a key pair instead of a password', async () => {
    const t = await provisionTenant(suite);
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await suite.operator.registerKey(t.tenant, t.user.id, 'agent-1', publicKey.export({ format: 'jwk' }) as JWK);

    const producer = await suite.operator.createUser(t.tenant, { email: `producer@${t.tenant}.example`, password: PASSWORD, roles: ['producer', 'full-control'] });
    const sendKey = await suite.pac.sas({ refresh_token: (await suite.pas.password(producer.email, PASSWORD)).refresh_token, rights: 'send' });

    const sinkPath = join(mkdtempSync(join(tmpdir(), 'keyway-sink-')), 'batches.jsonl');
    const agent = createAgent(
      {
        credentials: { kind: 'private_key_jwt', clientId: t.user.id, privateKey, kid: 'agent-1', alg: 'ES256' },
        subscription: 'default',
        receiveTimeoutSec: 2,
      },
      { pas: suite.pas, pac: suite.pac, topic: suite.topic, sink: await fileSink(sinkPath), logger: silentLogger },
    );
    agent.start();
    const published = [makeBatch(t.tenant, t.feed, 0), makeBatch(t.tenant, t.feed, 1)];
    for (const batch of published) await suite.topic.publish(sendKey.sas_key, batch);

    const lines = await waitForLines(sinkPath, published.length, 20_000);
    await agent.stop();
    expect(lines.map((line) => (JSON.parse(line) as { id: string }).id)).toEqual(published.map((b) => b.id));
    expect(agent.stats.written).toBe(2);
  });
});
