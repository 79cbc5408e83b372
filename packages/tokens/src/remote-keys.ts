import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

/**
 * A verifier's view of the issuer's JWKS. Keys are cached; an unknown kid triggers one reload
 * (at most once per cooldown) so a key published by a rotation is picked up without a restart.
 * The cache is also reloaded once it is older than maxAgeMs (default 60 s, the max-age PAS's JWKS
 * answer carries), so a key the issuer withdrew (design.md: kept only until every token it signed
 * has expired) stops verifying here too instead of being trusted until a restart.
 * Loading goes through the caller's HTTPS client, which trusts the Keyway CA.
 */
export function remoteKeySet(load: () => Promise<JSONWebKeySet>, options: { cooldownMs?: number; maxAgeMs?: number; now?: () => number } = {}): JWTVerifyGetKey {
  const cooldownMs = options.cooldownMs ?? 30_000;
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  const now = options.now ?? Date.now;
  let cached: { getKey: JWTVerifyGetKey; loadedAt: number } | undefined;
  let loading: Promise<JWTVerifyGetKey> | undefined;

  const reload = () =>
    (loading ??= load()
      .then((jwks) => {
        cached = { getKey: createLocalJWKSet(jwks), loadedAt: now() };
        return cached.getKey;
      })
      .finally(() => {
        loading = undefined;
      }));

  return async (header, token) => {
    const getKey = cached && now() - cached.loadedAt < maxAgeMs ? cached.getKey : await reload();
    try {
      return await getKey(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || !cached || now() - cached.loadedAt < cooldownMs) throw err;
      return (await reload())(header, token);
    }
  };
}
