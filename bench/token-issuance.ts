import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { jwtVerify, SignJWT } from 'jose';
import { REDIS_URL, startSuite } from '@keyway/testkit';
import { issueAccessToken, KeyRing, SIGNING_ALG, verifyAccessToken, type TokenSettings } from '@keyway/tokens';
import { machine, measure, table, type Figure } from './measure.ts';
import { startTokenPeer } from './token-peer.ts';

/**
 * Token issuance on the real suite (five services on loopback HTTPS, PostgreSQL records and audit
 * trail, Redis for hot state, strict revocation) against a peer measured in the same run with the same
 * client (panva oidc-provider's client_credentials grant, ES256 JWT access tokens: token-peer.ts),
 * and against the raw cost of the cryptography underneath: jose ES256 sign and verify, and
 * verifyAccessToken (signature plus every RFC 8725 claim check). Fixed iteration counts, 8 requests
 * in flight.
 */
const CONCURRENCY = 8;
const GRANTS = 200;
/** requests of each kind before the measured ones, so that no figure pays for JIT compilation or cold connections */
const WARM_UP = 40;
const PEER = 'peer: oidc-provider client_credentials (ES256 JWT access token)';
const REFRESH = 'refresh grant (rotation, reuse check, entitlement re-check, audit, ES256 pair)';
const SAS_MINT = 'PAC SAS mint (verify, introspection, entitlement re-check, audit)';
/** `BENCH_TOKENS_ONLY=password,peer,raw` narrows a run: the password grant, the grants against the peer, the raw cryptography */
const only = (part: string) => !process.env.BENCH_TOKENS_ONLY || process.env.BENCH_TOKENS_ONLY.split(',').includes(part);
const CRYPTO_OPS = 4000;
const PASSWORD = 'bench-password-0123456789';

/**
 * Node CPU per request (this process: the client, the peer and the five services; not PostgreSQL's
 * or Redis's), which a loaded machine moves far less than ops/s: the peer spends only CPU, ours also waits.
 */
const cpuPerOp = new Map<string, number>();

async function measureCpu(name: string, op: (i: number, worker: number) => unknown): Promise<Figure> {
  const before = process.cpuUsage();
  const figure = await measure(name, { iterations: GRANTS, concurrency: CONCURRENCY }, op);
  const used = process.cpuUsage(before);
  cpuPerOp.set(name, (used.user + used.system) / 1000 / figure.ops);
  return figure;
}

export async function tokenIssuance(): Promise<Figure[]> {
  const figures: Figure[] = [];
  // The bench logs in CONCURRENCY at a time from one address: above the login throttle's per-source
  // in-flight cap (4); and on a loaded machine a login may wait for scrypt longer than the IdP's 2 s.
  const limits = { pas: { loginLimits: { concurrentPerSource: CONCURRENCY } }, idp: { hashMaxWaitMs: 30_000 } };
  const suite = await startSuite({ redisUrl: REDIS_URL, revocationMode: 'strict', limits });
  const peer = await startTokenPeer({ ...suite.pki.certs.pas!, caPem: suite.pki.ca.certPem });
  try {
    const tenant = `bench-${randomUUID().slice(0, 8)}`;
    await suite.operator.createTenant({ id: tenant, name: 'Bench', feeds: ['edr-events'] });
    const email = `agent@${tenant}.example`;
    await suite.operator.createUser(tenant, { email, password: PASSWORD, roles: ['full-control'] });

    if (only('password'))
      figures.push(await measure('password grant (idp scrypt + entitlement + ES256 pair)', { iterations: GRANTS, concurrency: CONCURRENCY }, () => suite.pas.password(email, PASSWORD)));

    if (only('peer')) {
      // One refresh-token chain per worker: each refresh spends its token and continues with the new one.
      const chains = await Promise.all(Array.from({ length: CONCURRENCY }, async () => (await suite.pas.password(email, PASSWORD)).refresh_token));
      const refresh = async (_: number, worker: number) => {
        chains[worker] = (await suite.pas.refresh(chains[worker]!)).refresh_token;
      };
      // A SAS key for the feed, minted from the worker's current refresh token (a mint does not spend it).
      const mint = (_: number, worker: number) => suite.pac.sas({ refresh_token: chains[worker]!, rights: 'listen' });
      const peerGrant = () => peer.clientCredentials();
      for (const op of [peerGrant, refresh, mint]) await measure('warm-up', { iterations: WARM_UP, concurrency: CONCURRENCY }, op);

      // The peer before and after ours, so that a change in the machine's load during the run shows.
      figures.push(await measureCpu(PEER, peerGrant));
      figures.push(await measureCpu(REFRESH, refresh));
      figures.push(await measureCpu(SAS_MINT, mint));
      figures.push(await measureCpu(`${PEER}, again`, peerGrant));
    }
  } finally {
    await peer.close();
    await suite.close();
  }
  if (only('raw')) figures.push(...(await rawCrypto()));
  return figures;
}

/** The cryptography underneath, without HTTP: the same key and claims as PAS's access tokens. */
async function rawCrypto(): Promise<Figure[]> {
  const figures: Figure[] = [];
  const ring = await KeyRing.generate();
  const key = ring.active();
  const settings: TokenSettings = {
    issuer: 'https://pas.bench',
    accessAudience: 'https://pac.bench',
    refreshAudience: 'https://pas.bench',
    accessTtlSec: 1200,
    refreshTtlSec: 1_209_600,
    clockToleranceSec: 30,
  };
  const subject = { sub: 'u-1', tid: 'acme', roles: ['full-control'], scope: 'feed:edr-events', client_id: 'keyway-importer' };
  const token = (await issueAccessToken(ring.signer(), settings, subject)).token;
  const publicKey = await crypto.subtle.importKey('jwk', key.publicJwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
  const localKeys = ring.localKeySet();

  figures.push(
    await measure('raw jose ES256 sign (SignJWT)', { iterations: CRYPTO_OPS, concurrency: CONCURRENCY }, () =>
      new SignJWT({ ...subject }).setProtectedHeader({ alg: SIGNING_ALG, typ: 'at+jwt', kid: key.kid }).setIssuedAt().setExpirationTime('20m').sign(key.privateKey),
    ),
  );
  figures.push(await measure('raw jose ES256 verify (jwtVerify, key in hand)', { iterations: CRYPTO_OPS, concurrency: CONCURRENCY }, () => jwtVerify(token, publicKey)));
  figures.push(
    await measure('verifyAccessToken (kid lookup, alg/typ/iss/aud/exp/nbf, claims schema)', { iterations: CRYPTO_OPS, concurrency: CONCURRENCY }, () =>
      verifyAccessToken(token, localKeys, { issuer: settings.issuer, audience: settings.accessAudience, clockToleranceSec: 30 }),
    ),
  );
  return figures;
}

/** Our endpoints over the peer measured in the same run (the mean of its two figures), with the issue's targets. */
export function tokenRatios(figures: Figure[]): string {
  const opsOf = (name: string) => figures.find((f) => f.name === name)?.opsPerSec ?? 0;
  const peer = (opsOf(PEER) + opsOf(`${PEER}, again`)) / 2;
  if (peer === 0) return '';
  const line = (what: string, name: string, target: number) => `- ${what} / peer: ${(opsOf(name) / peer).toFixed(2)} (target ≥ ${target})`;
  const cpu = (name: string) => `${(cpuPerOp.get(name) ?? 0).toFixed(1)} ms`;
  const cpuLine = `- Node CPU per request: peer ${cpu(PEER)} and ${cpu(`${PEER}, again`)}, refresh grant ${cpu(REFRESH)}, PAC SAS mint ${cpu(SAS_MINT)}`;
  return [line('refresh grant', REFRESH, 0.5), line('PAC SAS mint', SAS_MINT, 0.7), cpuLine, ''].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const figures = await tokenIssuance();
  process.stdout.write(`${machine()}\n\n${table('Token issuance', figures)}\n${tokenRatios(figures)}`);
}
