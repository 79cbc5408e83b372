import { Router } from 'express';
import { feedsFromScope, SasRequest, SasResponse, topicResource, type Rights } from '@keyway/contracts';
import { InsufficientScope, InvalidToken, parseInput, requireContentType, shapeResponse, telemetry, TemporarilyUnavailable } from '@keyway/kit';
import type { Introspection } from '@keyway/contracts';
import { signSas } from '@keyway/sas';
import { TokenError, verifyRefreshToken, type JWTVerifyGetKey, type RefreshClaims } from '@keyway/tokens';
import type { IssuedRegistry } from '../issued/registry.ts';
import type { TenantKeyStore } from '../keys/tenant-keys.ts';

export interface SasEndpointOptions {
  pasIssuer: string;
  topicBaseUrl: string;
  sasTtlSec: number;
  clockToleranceSec: number;
  now?: () => number;
}

/** Which SAS rights each role may hold. */
const RIGHTS_BY_ROLE: Record<string, Array<'listen' | 'send'>> = {
  'full-control': ['listen', 'send'],
  'read-only': ['listen'],
  producer: ['send'],
};

function allowedRights(roles: string[]): Set<string> {
  return new Set(roles.flatMap((r) => RIGHTS_BY_ROLE[r] ?? []));
}

/** The resource asked for must be one of the token's feeds, on the token's tenant. */
function resolveTopic(claims: RefreshClaims, topicBaseUrl: string, resource: string | undefined): { topic: string; resource: string } {
  const feeds = feedsFromScope(claims.scope);
  if (resource === undefined) {
    const topic = feeds[0];
    if (!topic) throw new InsufficientScope('the token grants no feed');
    return { topic, resource: topicResource(topicBaseUrl, claims.tid, topic) };
  }
  const topic = feeds.find((feed) => topicResource(topicBaseUrl, claims.tid, feed).toLowerCase() === resource.toLowerCase());
  if (!topic) throw new InsufficientScope('the resource is not a feed this token grants');
  return { topic, resource: topicResource(topicBaseUrl, claims.tid, topic) };
}

/** POST /v1/sas: a valid refresh token → a one-day SAS key for one tenant topic (steps 5 and 6). */
export function sasEndpoint(
  options: SasEndpointOptions,
  deps: { pasKeys: JWTVerifyGetKey; introspect: (refreshToken: string) => Promise<Introspection>; keys: TenantKeyStore; issued: IssuedRegistry },
): Router {
  const router = Router();
  const minted = telemetry('pac').counter('keyway.sas_keys.minted', 'SAS keys minted');
  router.post('/v1/sas', requireContentType('application/json', 'application/x-www-form-urlencoded'), async (req, res) => {
    res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
    const request = parseInput(SasRequest, req.body, 'body');
    const claims = await verifyRefreshToken(request.refresh_token, deps.pasKeys, {
      issuer: options.pasIssuer,
      audience: options.pasIssuer,
      clockToleranceSec: options.clockToleranceSec,
      now: options.now,
    }).catch((err: unknown) => {
      if (err instanceof TokenError) throw new InvalidToken('the refresh token is invalid, expired or revoked', err.code);
      throw err;
    });
    // Step 6: the signature says PAS issued it; only PAS knows whether it is still current (RFC 7662).
    const status = await deps.introspect(request.refresh_token).catch((err: unknown) => {
      throw new TemporarilyUnavailable('the token cannot be checked right now; retry later', String(err), { 'retry-after': '5' });
    });
    if (!status.active) throw new InvalidToken('the refresh token is invalid, expired or revoked', 'inactive at introspection');
    const { topic, resource } = resolveTopic(claims, options.topicBaseUrl, request.resource);
    const rights: Rights = request.rights;
    const allowed = allowedRights(claims.roles);
    if (!rights.split('-').every((r) => allowed.has(r))) throw new InsufficientScope(`the token's roles do not grant the ${rights} right`);

    const nowSec = Math.floor((options.now?.() ?? Date.now()) / 1000);
    const expiry = nowSec + options.sasTtlSec;
    const { sasKey, keyId } = signSas(await deps.keys.signingKey(claims.tid), rights, resource, expiry);
    await deps.issued.record({ keyId, tenant: claims.tid, topic, rights, sub: claims.sub, fid: claims.fid, expiresAt: expiry });
    minted.add(1, { tenant: claims.tid, rights });
    req.log.info('sas_key.minted', { tenant: claims.tid, topic, rights, keyId, sub: claims.sub, jti: claims.jti });
    res.json(shapeResponse(SasResponse, { sas_key: sasKey, resource, rights, expires_at: new Date(expiry * 1000).toISOString(), key_id: keyId }));
  });
  return router;
}
