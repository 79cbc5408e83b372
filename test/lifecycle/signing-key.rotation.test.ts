import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBroker, type Broker } from '@keyway/broker';
import { entitlementClient, idpClient, pasClient, type PasClient } from '@keyway/clients';
import { createLogger, listenHttps, silentLogger, type RunningServer } from '@keyway/kit';
import { createApp as createPas, loadKeyRing, loadSshCertificateAuthority, sharedKeyRing, type SharedKeyRing } from '@keyway/pas';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { parsePublicKeyLine, publicKeyFromKeyObject, publicKeyLine, verifyCertificate } from '@keyway/ssh';
import { lowS } from '@keyway/tokens';
import { PASSWORD, provisionTenant, rawClient } from '../helpers.ts';
import { staticTls } from '@keyway/tls';

/**
 * design.md, "Tokens and keys": a new signing key is published before it signs, and an old one is
 * kept until every token it signed has expired. Two PAS instances share the ring through the store
 * (the suite's, and a second one started here, taking turns like a load balancer would) while
 * traffic logs in and trades refresh tokens for SAS keys at PAC across two rotations.
 */

const kidOf = (token: string) => decodeProtectedHeader(token).kid;
const RELOAD_SEC = 1;
const LEAD_SEC = 2;
const LIFETIME_SEC = 15;
const TOLERANCE_SEC = 1;
/** retiring keys stay published for the longest lifetime + clock tolerance + one reload period (keys/rotate.ts) */
const RETIRE_MS = (LIFETIME_SEC + TOLERANCE_SEC) * 1000 + RELOAD_SEC * 1000;
/** the suite's PAC reloads PAS's JWKS once its copy is older than this */
const PAC_JWKS_MAX_AGE_MS = 2000;

describe('signing-key rotation under traffic, two PAS instances', { timeout: 90_000 }, () => {
  let suite: Suite;
  let operator: PasClient;
  let second: { pas: PasClient; server: RunningServer; ring: SharedKeyRing; broker: Broker; close(): Promise<void> };
  const pacLog: Array<{ msg: string; requestId?: string; detail?: string }> = [];

  beforeAll(async () => {
    suite = await startSuite({
      redisUrl: REDIS_URL,
      lifetimes: { accessTtlSec: LIFETIME_SEC, refreshTtlSec: LIFETIME_SEC, clockToleranceSec: TOLERANCE_SEC },
      signingKeys: { reloadSec: RELOAD_SEC, leadSec: LEAD_SEC },
      logger: (service) => (service === 'pac' ? createLogger({ service, level: 'info', write: (line) => pacLog.push(JSON.parse(line)) }) : silentLogger),
    });
    const caPem = suite.pki.ca.certPem;
    operator = pasClient({ caPem, clientCert: suite.pki.certs.operator, baseUrl: suite.urls.pas });

    // A second PAS instance on the same store, issuer and settings: a replica behind the same URL.
    const asPas = { caPem, clientCert: suite.pki.certs.pas };
    const ring = await sharedKeyRing(suite.records.pas, { kek: suite.kek, reloadMs: RELOAD_SEC * 1000, logger: silentLogger });
    const broker = await createBroker({});
    const app = createPas(
      {
        settings: {
          issuer: suite.urls.pas,
          accessAudience: suite.urls.pac,
          refreshAudience: suite.urls.pas,
          accessTtlSec: LIFETIME_SEC,
          refreshTtlSec: LIFETIME_SEC,
          clockToleranceSec: TOLERANCE_SEC,
        },
        revocationMode: 'lenient',
        signingKeyLeadSec: LEAD_SEC,
      },
      {
        records: suite.records.pas,
        store: suite.stores.pas,
        auditDb: suite.audit,
        ring,
        sshCa: await loadSshCertificateAuthority(suite.records.pas, suite.kek),
        idp: idpClient({ ...asPas, baseUrl: suite.urls.idp }),
        entitlement: entitlementClient({ ...asPas, baseUrl: suite.urls.entitlement }),
        broker,
        logger: silentLogger,
      },
    );
    const server = await listenHttps(app, staticTls({ ...suite.pki.certs.pas!, caPem }), 0);
    second = {
      pas: pasClient({ caPem, baseUrl: server.url }),
      server,
      ring,
      broker,
      async close() {
        await server.close();
        await app.close();
        ring.close();
        await broker.close();
      },
    };
  });
  afterAll(async () => {
    await second?.close();
    await suite?.close();
  });

  /** Waits until the ring's next key has been published for the lead, then rotates (the rule in keys/rotate.ts). */
  async function rotateWhenDue() {
    const listing = await operator.signingKeys();
    const next = listing.keys.find((k) => k.state === 'next')!;
    await sleep(Math.max(0, Date.parse(next.createdAt) + LEAD_SEC * 1000 + 50 - Date.now()));
    const rotation = await operator.rotateSigningKeys();
    expect(rotation.active_kid).toBe(next.kid);
    return { rotation, at: Date.now() };
  }

  const jwksKids = async (pas: PasClient) => (await pas.jwks()).keys.map((k) => k.kid);
  const mint = (refreshToken: string, requestId = randomUUID()) =>
    rawClient(suite, 'pac').post('/v1/sas', { refresh_token: refreshToken, rights: 'listen' }, { headers: { 'x-request-id': requestId } });

  /** Polls for one reload period plus a second of scheduling slack: every instance must converge within one period. */
  async function withinReload<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
    const deadline = Date.now() + RELOAD_SEC * 1000 + 1000;
    for (;;) {
      const value = await read();
      if (done(value) || Date.now() > deadline) return value;
      await sleep(100);
    }
  }

  it('keeps old tokens valid across two rotations, publishes each key before it signs and drops it after its tokens expired', async () => {
    const { email } = await provisionTenant(suite);
    const instances = [suite.pas, second.pas];
    const first = await suite.pas.password(email, PASSWORD);
    const k1 = kidOf(first.refresh_token)!;

    // Before any rotation: both instances publish the active key and the next one, which signs nothing yet.
    const before = await operator.signingKeys();
    const k2 = before.keys.find((k) => k.state === 'next')!.kid;
    expect(before.active_kid).toBe(k1);
    for (const pas of instances) expect(await jwksKids(pas)).toEqual(expect.arrayContaining([k1, k2]));
    expect(kidOf((await second.pas.password(email, PASSWORD)).access_token)).toBe(k1);

    // Traffic: log in at either instance in turn and trade both the newest and the very first refresh token at PAC.
    const failures: string[] = [];
    const kidsSeen = new Set<string>();
    let stop = false;
    let rounds = 0;
    const traffic = (async () => {
      for (let i = 0; !stop && i < 10_000; i += 1) {
        try {
          const pair = await instances[i % 2]!.password(email, PASSWORD);
          kidsSeen.add(kidOf(pair.refresh_token)!);
          for (const token of [pair.refresh_token, first.refresh_token]) {
            const answer = await mint(token);
            if (answer.status !== 200) failures.push(`round ${i}: ${answer.status} ${answer.data.error} for kid ${kidOf(token)}`);
          }
        } catch (err) {
          failures.push(`round ${i}: ${String(err)}`);
        }
        rounds += 1;
      }
    })();

    // Let the traffic see each key sign before the next rotation (a password grant is slow: scrypt).
    const untilSeen = async (kid: string) => {
      const deadline = Date.now() + 20_000;
      while (!kidsSeen.has(kid) && failures.length === 0 && Date.now() < deadline) await sleep(50);
    };
    await untilSeen(k1);

    // Rotation 1: the published next key signs; the old one retires; a new next key is published.
    const one = await rotateWhenDue();
    const k3 = one.rotation.published_kids.find((kid) => ![k1, k2].includes(kid))!;
    expect(one.rotation).toEqual({ active_kid: k2, published_kids: expect.arrayContaining([k1, k2, k3]) });
    expect(one.rotation.published_kids).toHaveLength(3);
    expect(kidOf((await suite.pas.password(email, PASSWORD)).access_token)).toBe(k2);
    // The other instance follows within one reload period: same keys published, same key signing.
    expect(
      await withinReload(
        () => jwksKids(second.pas),
        (kids) => kids.includes(k3),
      ),
    ).toEqual(expect.arrayContaining([k1, k2, k3]));
    expect(
      await withinReload(
        async () => kidOf((await second.pas.password(email, PASSWORD)).refresh_token),
        (kid) => kid === k2,
      ),
    ).toBe(k2);
    expect((await mint(first.refresh_token)).status).toBe(200);

    await untilSeen(k2);

    // Rotation 2: k1 and k2 are both retiring and both still published.
    const two = await rotateWhenDue();
    const k4 = two.rotation.published_kids.find((kid) => ![k1, k2, k3].includes(kid))!;
    expect(two.rotation).toEqual({ active_kid: k3, published_kids: expect.arrayContaining([k1, k2, k3, k4]) });
    const latest = await suite.pas.password(email, PASSWORD);
    expect(kidOf(latest.refresh_token)).toBe(k3);
    expect((await mint(latest.refresh_token)).status).toBe(200);
    expect((await mint(first.refresh_token)).status).toBe(200);
    expect(
      await withinReload(
        async () => kidOf((await second.pas.password(email, PASSWORD)).refresh_token),
        (kid) => kid === k3,
      ),
    ).toBe(k3);

    await untilSeen(k3);
    stop = true;
    await traffic;
    expect(failures).toEqual([]);
    expect(rounds).toBeGreaterThan(3);
    expect([...kidsSeen]).toEqual(expect.arrayContaining([k1, k2, k3]));

    // The refresh grant (PAS verifying its own token) also accepts a token signed by a retiring key.
    const refreshed = await second.pas.refresh(first.refresh_token);
    expect(kidOf(refreshed.refresh_token)).toBe(k3);

    // A token k1 signs now (only its private key can) is accepted while k1 is retiring...
    const retired = (await loadKeyRing(suite.records.pas, suite.kek)).list().find((k) => k.kid === k1)!;
    expect(retired).toMatchObject({ state: 'retiring' });
    expect(retired.retireAfter! - one.at).toBeLessThanOrEqual(RETIRE_MS);
    expect(retired.retireAfter! - one.at).toBeGreaterThan(RETIRE_MS - 1000);
    const signedByK1 = async () => {
      const iat = Math.floor(Date.now() / 1000);
      return lowS(
        await new SignJWT({ ...decodeJwt(latest.refresh_token), iat, nbf: iat, exp: iat + LIFETIME_SEC }).setProtectedHeader({ alg: 'ES256', typ: 'rt+jwt', kid: k1 }).sign(retired.privateKey),
      );
    };
    expect((await mint(await signedByK1())).status).toBe(200);

    // ...and once its retireAfter has passed it is no longer published by either instance, and PAC refuses what it signs.
    await sleep(Math.max(0, retired.retireAfter! + 50 - Date.now()));
    expect(await jwksKids(suite.pas)).not.toContain(k1);
    expect(
      await withinReload(
        () => jwksKids(second.pas),
        (kids) => !kids.includes(k1),
      ),
    ).not.toContain(k1);
    expect(await jwksKids(suite.pas)).toEqual(expect.arrayContaining([k2, k3, k4]));
    expect((await operator.signingKeys()).keys.find((k) => k.kid === k1)).toMatchObject({ state: 'retiring', published: false });
    await sleep(PAC_JWKS_MAX_AGE_MS + 100);
    const requestId = randomUUID();
    const refused = await mint(await signedByK1(), requestId);
    expect(refused.status).toBe(401);
    expect(refused.data).toMatchObject({ error: 'invalid_token', error_description: expect.any(String) });
    // PAC refused it itself (its cached JWKS no longer holds k1), not only PAS at introspection.
    expect(pacLog.find((line) => line.requestId === requestId && line.msg === 'request refused')?.detail).toBe('ERR_TOKEN_KID');
    // The ring carries on: a fresh login's token (signed by k3) still mints.
    const fresh = await suite.pas.password(email, PASSWORD);
    expect(kidOf(fresh.refresh_token)).toBe(k3);
    expect((await mint(fresh.refresh_token)).status).toBe(200);
  });

  it('both instances publish the one SSH CA and sign certificates with it (issue 17)', async () => {
    const { email } = await provisionTenant(suite);
    const { access_token } = await suite.pas.password(email, PASSWORD);
    const caLine = await suite.pas.sshCaPublicKey();
    expect(await second.pas.sshCaPublicKey()).toBe(caLine);
    const key = publicKeyLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').privateKey));
    for (const pas of [suite.pas, second.pas]) {
      const { certificate } = await pas.sshCertificate(access_token, key);
      expect(verifyCertificate(Buffer.from(certificate.split(' ')[1]!, 'base64'), { trusted: [parsePublicKeyLine(caLine)], type: 'user' }).keyId).toMatch(/^keyway:/);
    }
  });
});

describe('signing-key admin API', () => {
  let suite: Suite;
  beforeAll(async () => {
    // A long lead, so the freshly published next key is certainly not yet allowed to sign.
    suite = await startSuite({ redisUrl: REDIS_URL, signingKeys: { reloadSec: 1, leadSec: 60 } });
  });
  afterAll(() => suite?.close());

  it('answers operators only: 401 invalid_client without a certificate, 403 access_denied for another service', async () => {
    for (const [caller, status, error] of [
      [undefined, 401, 'invalid_client'],
      ['pac', 403, 'access_denied'],
    ] as const) {
      const http = rawClient(suite, 'pas', caller);
      for (const response of [await http.get('/admin/v1/signing-keys'), await http.post('/admin/v1/signing-keys/rotate')]) {
        expect(response.status).toBe(status);
        expect(response.data).toMatchObject({ error, error_description: expect.any(String) });
      }
    }
  });

  it('lists kid, state and dates of every key, never key material', async () => {
    const response = await rawClient(suite, 'pas', 'operator').get('/admin/v1/signing-keys');
    expect(response.status).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const { active_kid, keys } = response.data as { active_kid: string; keys: Array<Record<string, unknown>> };
    expect(keys.map((k) => k.state)).toEqual(['active', 'next']);
    expect(keys[0]!.kid).toBe(active_kid);
    for (const key of keys) {
      expect(Object.keys(key).sort()).toEqual(['createdAt', 'kid', 'published', 'state']);
      expect(key.published).toBe(true);
    }
    expect(JSON.stringify(response.data)).not.toMatch(/"(d|privateJwk|x|y)"/);
  });

  it('refuses to rotate (409 conflict, Retry-After) until the next key has been published for the lead, and changes nothing', async () => {
    const http = rawClient(suite, 'pas', 'operator');
    const before = (await http.get('/admin/v1/signing-keys')).data;
    const response = await http.post('/admin/v1/signing-keys/rotate');
    expect(response.status).toBe(409);
    expect(response.data).toMatchObject({ error: 'conflict', error_description: expect.stringMatching(/published/) });
    const retryAfter = Number(response.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(50);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await http.get('/admin/v1/signing-keys')).data).toEqual(before);
  });
});
