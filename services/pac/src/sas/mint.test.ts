import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevKek, Keyring } from '@keyway/seal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog, noiseGate, readSince, securityMetrics } from '@keyway/audit';
import type { Introspection } from '@keyway/contracts';
import { InsufficientScope, InvalidToken, silentLogger, TemporarilyUnavailable } from '@keyway/kit';
import { parseSas } from '@keyway/sas';
import { createMemoryStore } from '@keyway/store';
import { connectTestDatabase, type TestDatabaseConnections } from '@keyway/testkit';
import { issueRefreshToken, KeyRing, type TokenSettings } from '@keyway/tokens';
import { issuedRegistry } from '../issued/registry.ts';
import { tenantKeys } from '../keys/tenant-keys.ts';
import type { HolderCheck } from './holder-check.ts';
import { mintSasKey, type SasMintOptions } from './mint.ts';

const settings: TokenSettings = { issuer: 'https://pas.test', accessAudience: 'https://pac.test', refreshAudience: 'https://pas.test', accessTtlSec: 1200, refreshTtlSec: 3600, clockToleranceSec: 5 };
const options: SasMintOptions = { pasIssuer: settings.issuer, topicBaseUrl: 'https://topic.test', sasTtlSec: 86_400, clockToleranceSec: 5 };
const origin = { fields: { requestId: 'r-1', sourceAddress: '203.0.113.7' }, source: '203.0.113.7', log: silentLogger };

const entitled: HolderCheck = async () => ({ allow: true, rights: 'listen-send' });

let database: TestDatabaseConnections;
beforeAll(async () => {
  database = await connectTestDatabase();
});
afterAll(() => database?.close());

/** PAC's mint on the embedded store, a test database for the trail and in-process PAS keys, introspection and the entitlement service stubbed: no HTTP. */
async function pac(introspect: () => Promise<Introspection> = async () => ({ active: true }), holders: HolderCheck = entitled) {
  // each PAC starts on an empty trail, so events() holds this one's only
  await database.admin.query('TRUNCATE keyway_audit.events');
  const store = createMemoryStore({ prefix: 'pac:' });
  const auditDb = database.open('pac');
  const audit = createAuditLog({ db: auditDb, store, service: 'pac', logger: silentLogger });
  const counted: Array<[string, Record<string, string>]> = [];
  const meter = { createCounter: (name: string) => ({ add: (_n: number, attrs: Record<string, string>) => void counted.push([name, attrs]) }) } as unknown as Parameters<typeof securityMetrics>[0];
  const ring = await KeyRing.generate();
  const keys = tenantKeys(store, await Keyring.open(await ensureDevKek(await mkdtemp(join(tmpdir(), 'keyway-pac-')))));
  const deps = {
    pasKeys: ring.localKeySet(),
    introspect,
    holders,
    keys,
    issued: issuedRegistry(store),
    audit,
    metrics: securityMetrics(meter),
    noise: noiseGate({ log: audit, store, logger: silentLogger, perSource: 120, windowMs: 60_000 }),
  };
  const refreshToken = async (rights: Record<string, string>, sub = 'u-1', cnf?: { jkt: string }) => {
    // cnf (RFC 9449 §6.1): a token PAS bound to the agent's DPoP key
    const subject = { sub, tid: 'acme', roles: ['read-only'], scope: 'feed:edr-events', client_id: 'keyway-importer', rights, fid: `f-${sub}`, ...(cnf && { cnf }) };
    return (await issueRefreshToken(ring.signer(), settings, subject)).token;
  };
  const events = async () => (await readSince(database.as('pac'), 'pac', 0)).events;
  return {
    deps,
    refreshToken,
    events,
    counted,
    auditDb,
    close: async () => {
      await deps.noise.close();
      await auditDb.close().catch(() => undefined);
    },
  };
}

describe('mintSasKey: a SAS key without HTTP', () => {
  it('mints exactly the rights the token grants and records sas_key.minted with the key id, counted', async () => {
    const { deps, refreshToken, events, counted, close } = await pac();
    const minted = await mintSasKey(options, deps, origin, { refresh_token: await refreshToken({ 'edr-events': 'listen' }) });
    expect(minted).toMatchObject({ rights: 'listen', resource: 'https://topic.test/tenants/acme/topics/edr-events' });
    expect(parseSas(minted.sas_key)).toMatchObject({ keyName: 'listen' });
    const [event] = await events();
    expect(event).toMatchObject({
      action: 'sas_key.minted',
      outcome: 'success',
      tenant: 'acme',
      subject: 'u-1',
      tokenId: minted.key_id,
      requestId: 'r-1',
      detail: { rights: 'listen', topic: 'edr-events' },
    });
    expect(JSON.stringify(event)).not.toContain(minted.sas_key);
    expect(counted).toEqual([['keyway.sas_keys.minted', { tenant: 'acme', rights: 'listen', outcome: 'success' }]]);
    await close();
  });

  it('two holders minting for one feed and right in the same second get keys of their own: revoking one leaves the other', async () => {
    const { deps, refreshToken, close } = await pac();
    const at = Date.now();
    const sameSecond = { ...options, now: () => at };
    const mint = async (sub: string) => mintSasKey(sameSecond, deps, origin, { refresh_token: await refreshToken({ 'edr-events': 'send' }, sub) });
    const [first, second, third, again] = [await mint('u-1'), await mint('u-2'), await mint('u-3'), await mint('u-1')];
    expect(new Set([first.key_id, second.key_id, third.key_id]).size).toBe(3);
    // the first keeps the full lifetime; each other holder's expires a second earlier
    const full = Math.floor(at / 1000) + options.sasTtlSec;
    expect([first, second, third].map((k) => parseSas(k.sas_key).expiry)).toEqual([full, full - 1, full - 2]);
    // one holder may get the same key twice: it is theirs either way
    expect(again.sas_key).toBe(first.sas_key);
    const key = await deps.issued.find(second.key_id);
    expect(key && (await deps.issued.revokeKey(key))).toBe(true);
    expect([await deps.issued.isRevoked(first.key_id), await deps.issued.isRevoked(second.key_id), await deps.issued.isRevoked(third.key_id)]).toEqual([false, true, false]);
    // a short lifetime is never halved: past its steps a mint answers 503 and the next second has keys again
    const short = { ...sameSecond, sasTtlSec: 3 };
    await mintSasKey(short, deps, origin, { refresh_token: await refreshToken({ 'edr-events': 'send' }, 'u-4') });
    await expect(mintSasKey(short, deps, origin, { refresh_token: await refreshToken({ 'edr-events': 'send' }, 'u-5') })).rejects.toBeInstanceOf(TemporarilyUnavailable);
    await close();
  });

  it('RFC 9449: a bound refresh token is refused without a proof by its key (sas_key.denied, invalid_dpop_proof); with one the key records the binding', async () => {
    const { deps, refreshToken, events, close } = await pac();
    const jkt = 'J'.repeat(43);
    const token = await refreshToken({ 'edr-events': 'listen' }, 'u-1', { jkt });
    await expect(mintSasKey(options, deps, origin, { refresh_token: token })).rejects.toMatchObject({ status: 400, code: 'invalid_dpop_proof' });
    expect(await events()).toMatchObject([{ action: 'sas_key.denied', outcome: 'denied', reason: 'invalid_dpop_proof', subject: 'u-1' }]);
    const asked: unknown[] = [];
    const proveKey = async (expected: { credential: string; jkt: string | undefined }) => {
      asked.push(expected);
      return { jkt };
    };
    const minted = await mintSasKey(options, deps, { ...origin, proveKey }, { refresh_token: token });
    expect(asked).toEqual([{ credential: token, jkt }]);
    expect((await deps.issued.find(minted.key_id))?.jkt).toBe(jkt);
    await close();
  });

  it('a right the token does not grant is denied (sas_key.denied, insufficient_scope), counted as a denial', async () => {
    const { deps, refreshToken, events, counted, close } = await pac();
    await expect(mintSasKey(options, deps, origin, { refresh_token: await refreshToken({ 'edr-events': 'listen' }), rights: 'send' })).rejects.toBeInstanceOf(InsufficientScope);
    expect(await events()).toMatchObject([{ action: 'sas_key.denied', outcome: 'denied', reason: 'insufficient_scope', subject: 'u-1', detail: { rights: 'send' } }]);
    expect(counted).toContainEqual(['keyway.denials', { service: 'pac', action: 'sas_key.denied', tenant: 'acme', reason: 'insufficient_scope' }]);
    // a token that does not verify names nobody: counted by the noise gate, never an event of its own
    await expect(mintSasKey(options, deps, origin, { refresh_token: 'garbage' })).rejects.toBeInstanceOf(InvalidToken);
    expect(await events()).toHaveLength(1);
    await close();
  });

  it('issue 11: the system of record decides, not the token: a suspended tenant or a right taken away is refused though PAS still says active', async () => {
    const asked: Array<Parameters<HolderCheck>[0]> = [];
    const suspended = await pac(undefined, async (holder) => {
      asked.push(holder);
      return { allow: false, reason: 'tenant_suspended' };
    });
    await expect(mintSasKey(options, suspended.deps, origin, { refresh_token: await suspended.refreshToken({ 'edr-events': 'listen' }) })).rejects.toMatchObject({
      code: 'invalid_token',
      detail: 'entitlement: tenant_suspended',
    });
    expect(asked).toEqual([{ sub: 'u-1', tenant: 'acme', feed: 'edr-events' }]);
    expect(await suspended.events()).toMatchObject([{ action: 'sas_key.denied', outcome: 'denied', reason: 'invalid_token', subject: 'u-1' }]);
    await suspended.close();

    // the token still says send, the roles now grant listen only
    const narrowed = await pac(undefined, async () => ({ allow: true, rights: 'listen' }));
    await expect(mintSasKey(options, narrowed.deps, origin, { refresh_token: await narrowed.refreshToken({ 'edr-events': 'listen-send' }), rights: 'send' })).rejects.toBeInstanceOf(InsufficientScope);
    expect((await mintSasKey(options, narrowed.deps, origin, { refresh_token: await narrowed.refreshToken({ 'edr-events': 'listen-send' }), rights: 'listen' })).rights).toBe('listen');
    await narrowed.close();

    // the entitlement service unreachable: refused as unavailable, never minted on the token's word
    const unreachable = await pac(undefined, async () => Promise.reject(new Error('connect ECONNREFUSED')));
    await expect(mintSasKey(options, unreachable.deps, origin, { refresh_token: await unreachable.refreshToken({ 'edr-events': 'listen' }) })).rejects.toMatchObject({ status: 503 });
    expect(await unreachable.events()).toMatchObject([{ action: 'sas_key.failed', outcome: 'failure', reason: 'temporarily_unavailable' }]);
    await unreachable.close();
  });

  it('PAC that cannot check the token fails (sas_key.failed, temporarily_unavailable)', async () => {
    const { deps, refreshToken, events, close } = await pac(async () => Promise.reject(new Error('connect ECONNREFUSED')));
    await expect(mintSasKey(options, deps, origin, { refresh_token: await refreshToken({ 'edr-events': 'listen' }) })).rejects.toMatchObject({ status: 503 });
    expect(await events()).toMatchObject([{ action: 'sas_key.failed', outcome: 'failure', reason: 'temporarily_unavailable', subject: 'u-1' }]);
    await close();
  });

  it('fails closed: when the trail cannot take the minting, no key is returned (503, the trail out of reach)', async () => {
    const { deps, refreshToken, counted, auditDb, close } = await pac();
    const token = await refreshToken({ 'edr-events': 'listen' });
    await auditDb.close();
    await expect(mintSasKey(options, deps, origin, { refresh_token: token })).rejects.toBeInstanceOf(TemporarilyUnavailable);
    expect(counted).toEqual([['keyway.sas_keys.minted', { tenant: 'acme', rights: 'listen', outcome: 'failure' }]]);
    await close();
  });
});
