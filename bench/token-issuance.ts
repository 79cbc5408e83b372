import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { jwtVerify, SignJWT } from 'jose';
import { ApiError } from '@keyway/clients';
import { REDIS_URL, startSuite } from '@keyway/testkit';
import { issueAccessToken, KeyRing, SIGNING_ALG, verifyAccessToken, type TokenSettings } from '@keyway/tokens';
import { machine, measure, missing, table, type Figure } from './measure.ts';

/**
 * Token issuance on the real suite (five services on loopback HTTPS, Redis for every store) against
 * the raw cost of the cryptography underneath: jose ES256 sign and verify, and verifyAccessToken
 * (signature plus every RFC 8725 claim check). Fixed iteration counts, 8 requests in flight.
 */
const CONCURRENCY = 8;
const GRANTS = 200;
const CRYPTO_OPS = 4000;
const PASSWORD = 'bench-password-0123456789';

export async function tokenIssuance(): Promise<Figure[]> {
  const figures: Figure[] = [];
  // The bench logs in CONCURRENCY at a time from one address: above the login throttle's per-source in-flight cap (4).
  const suite = await startSuite({ redisUrl: REDIS_URL, limits: { pas: { loginLimits: { concurrentPerSource: CONCURRENCY } } } });
  try {
    const tenant = `bench-${randomUUID().slice(0, 8)}`;
    await suite.operator.createTenant({ id: tenant, name: 'Bench', feeds: ['edr-events'] });
    const email = `agent@${tenant}.example`;
    await suite.operator.createUser(tenant, { email, password: PASSWORD, roles: ['full-control'] });

    figures.push(await measure('password grant (idp scrypt + entitlement + ES256 pair)', { iterations: GRANTS, concurrency: CONCURRENCY }, () => suite.pas.password(email, PASSWORD)));

    // One refresh-token chain per worker: each refresh spends its token and continues with the new one.
    const chains = await Promise.all(Array.from({ length: CONCURRENCY }, async () => (await suite.pas.password(email, PASSWORD)).refresh_token));
    try {
      figures.push(
        await measure('refresh grant (rotation, reuse check, ES256 pair)', { iterations: GRANTS, concurrency: CONCURRENCY }, async (_, worker) => {
          chains[worker] = (await suite.pas.refresh(chains[worker]!)).refresh_token;
        }),
      );
    } catch (err) {
      // A PAS without grant_type=refresh_token yet: report it instead of a figure.
      if (!(err instanceof ApiError && err.code === 'unsupported_grant_type')) throw err;
      figures.push(missing('refresh grant', `${err.status} ${err.code}`));
    }
  } finally {
    await suite.close();
  }

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

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${machine()}\n\n${table('Token issuance', await tokenIssuance())}`);
}
