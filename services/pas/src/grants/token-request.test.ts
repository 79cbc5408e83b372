import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog, noiseGate, readSince, securityMetrics } from '@keyway/audit';
import type { EntitlementClient, IdpClient } from '@keyway/clients';
import { ApiError } from '@keyway/clients';
import type { AuthorizeDecision } from '@keyway/contracts';
import { AccessDenied, InvalidGrant, ServerError, silentLogger, TemporarilyUnavailable } from '@keyway/kit';
import { createMemoryStore } from '@keyway/store';
import { connectTestDatabase, type TestDatabaseConnections } from '@keyway/testkit';
import { KeyRing, type TokenSettings } from '@keyway/tokens';
import { authorizationCodes } from '../authorization/codes.ts';
import { refreshFamilies } from '../families/refresh-family.ts';
import { DEFAULT_LOGIN_LIMITS, loginThrottle } from '../throttling/login-throttle.ts';
import type { GrantContext } from './context.ts';
import { grantTokens } from './token-request.ts';

const settings: TokenSettings = { issuer: 'https://pas.test', accessAudience: 'https://pac.test', refreshAudience: 'https://pas.test', accessTtlSec: 1200, refreshTtlSec: 3600, clockToleranceSec: 5 };
const origin = { fields: { requestId: 'r-1', sourceAddress: '203.0.113.7' }, source: '203.0.113.7', log: silentLogger };
const login = { grant_type: 'password' as const, username: 'ada@example.com', password: 'correct horse battery' };
const allow: AuthorizeDecision = { allow: true, feeds: ['edr-events'], rights: { 'edr-events': 'listen' }, roles: ['read-only'] };

let database: TestDatabaseConnections;
beforeAll(async () => {
  database = await connectTestDatabase();
});
afterAll(() => database?.close());
beforeEach(() => database.admin.query('TRUNCATE keyway_audit.events'));

/** PAS's token operations on the embedded store, a test database for the trail, in-process keys and stubbed IdP and entitlement clients: no HTTP. */
async function pas(decide: () => Promise<AuthorizeDecision> = async () => allow) {
  const store = createMemoryStore({ prefix: 'pas:' });
  const auditDb = database.open('pas');
  const audit = createAuditLog({ db: auditDb, store, service: 'pas', logger: silentLogger });
  const counted: Array<[string, Record<string, string>]> = [];
  const meter = { createCounter: (name: string) => ({ add: (_n: number, attrs: Record<string, string>) => void counted.push([name, attrs]) }) } as unknown as Parameters<typeof securityMetrics>[0];
  const idp = {
    verifyPassword: async (email: string, password: string) => {
      if (password !== login.password) throw new ApiError(400, 'invalid_grant', 'the credentials are not valid');
      return { sub: 'u-1', tenant: 'acme', email, amr: ['pwd'], second_factor: false };
    },
  } as unknown as IdpClient;
  const entitlement = { authorize: decide } as unknown as EntitlementClient;
  const ring = await KeyRing.generate();
  const context: GrantContext = {
    ring,
    signer: ring.signer(),
    settings,
    idp,
    entitlement,
    families: refreshFamilies(store),
    audit,
    metrics: securityMetrics(meter),
    strict: true,
    reuseLeewaySec: 0,
    throttle: loginThrottle(store, DEFAULT_LOGIN_LIMITS),
    noise: noiseGate({ log: audit, store, logger: silentLogger, perSource: 120, windowMs: 60_000 }),
    browserClients: new Map(),
    codes: authorizationCodes(store, 60),
  };
  const events = async () => (await readSince(database.as('pas'), 'pas', 0)).events;
  return {
    context,
    events,
    counted,
    auditDb,
    close: async () => {
      await context.noise.close();
      await auditDb.close().catch(() => undefined);
    },
  };
}

describe('grantTokens: a token request without HTTP', () => {
  it('issues a pair for a password login and records token.issued with what the grant learned, counted', async () => {
    const { context, events, counted, close } = await pas();
    const pair = await grantTokens(context, origin, 'password', login);
    expect(pair).toMatchObject({ token_type: 'Bearer', scope: 'feed:edr-events' });
    const [issued] = await events();
    expect(issued).toMatchObject({ action: 'token.issued', outcome: 'success', subject: 'u-1', tenant: 'acme', requestId: 'r-1', detail: { grant_type: 'password', username: login.username } });
    expect(issued?.tokenId).toBeDefined();
    expect(JSON.stringify(issued)).not.toContain(pair.refresh_token);
    expect(counted).toEqual([['keyway.tokens.issued', { tenant: 'acme', grant_type: 'password', outcome: 'success' }]]);

    // the refresh grant rotates the family; presenting the spent token again is reuse: the family is revoked
    const next = await grantTokens(context, origin, 'refresh_token', { grant_type: 'refresh_token', refresh_token: pair.refresh_token });
    expect(next.refresh_token).not.toBe(pair.refresh_token);
    await expect(grantTokens(context, origin, 'refresh_token', { grant_type: 'refresh_token', refresh_token: pair.refresh_token })).rejects.toBeInstanceOf(InvalidGrant);
    expect((await events()).map(({ action, outcome }) => [action, outcome])).toEqual([
      ['token.issued', 'success'],
      ['token.refreshed', 'success'],
      ['refresh.reuse_detected', 'denied'],
      ['refresh_family.revoked', 'success'],
    ]);
    await close();
  });

  it('a denial by the entitlement service is thrown and recorded as authorization.denied with its reason code', async () => {
    const { context, events, counted, close } = await pas(async () => ({ allow: false, reason: 'role_missing' }));
    await expect(grantTokens(context, origin, 'password', login)).rejects.toBeInstanceOf(AccessDenied);
    expect(await events()).toMatchObject([{ action: 'authorization.denied', outcome: 'denied', reason: 'role_missing', subject: 'u-1', tenant: 'acme' }]);
    expect(counted).toContainEqual(['keyway.denials', { service: 'pas', action: 'authorization.denied', tenant: 'acme', reason: 'role_missing' }]);
    await close();
  });

  it('a wrong password is login.failed; a refresh token that does not verify names nobody and is only counted', async () => {
    const { context, events, close } = await pas();
    await expect(grantTokens(context, origin, 'password', { ...login, password: 'wrong wrong wrong' })).rejects.toMatchObject({ code: 'invalid_grant' });
    await expect(grantTokens(context, origin, 'refresh_token', { grant_type: 'refresh_token', refresh_token: 'not-a-token' })).rejects.toMatchObject({ code: 'invalid_grant' });
    expect(await events()).toMatchObject([{ action: 'login.failed', outcome: 'denied', reason: 'invalid_grant' }]);
    await close();
  });

  it('a dependency that fails is a failure (grant.failed, server_error), not a denial', async () => {
    const { context, events, counted, close } = await pas(async () => Promise.reject(new Error('socket hang up')));
    await expect(grantTokens(context, origin, 'password', login)).rejects.toBeInstanceOf(ServerError);
    expect(await events()).toMatchObject([{ action: 'grant.failed', outcome: 'failure', reason: 'server_error', subject: 'u-1' }]);
    expect(counted).toEqual([['keyway.tokens.issued', { tenant: 'acme', grant_type: 'password', outcome: 'failure' }]]);
    await close();
  });

  it('fails closed: when the trail cannot take the issuance, no pair is returned (503, the trail out of reach)', async () => {
    const { context, counted, auditDb, close } = await pas();
    await auditDb.close();
    await expect(grantTokens(context, origin, 'password', login)).rejects.toBeInstanceOf(TemporarilyUnavailable);
    expect(counted).toEqual([['keyway.tokens.issued', { tenant: 'acme', grant_type: 'password', outcome: 'failure' }]]);
    await close();
  });
});
