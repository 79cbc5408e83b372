import type { RequestHandler } from 'express';
import { z } from 'zod';
import { InsufficientScope, InvalidToken, parseInput, TemporarilyUnavailable } from '@keyway/kit';
import { FeedName, TenantId, topicResource } from '@keyway/contracts';
import { parseSas, SAS_SCHEME, SasError, verifySas, type Right, type VerifiedSas } from '@keyway/sas';
import { RETRY_AFTER_SEC } from '../delivery/broker-errors.ts';
import type { KeysEntry, TenantKeyCache } from './tenant-keys.ts';

export const TopicPath = z.object({ tenant: TenantId, topic: FeedName });

const CHALLENGE = { 'WWW-Authenticate': SAS_SCHEME };

const PUBLIC_401: Record<string, string> = {
  ERR_SAS_MALFORMED: 'the Authorization header is not a valid SharedAccessSignature',
  ERR_SAS_EXPIRED: 'the shared access signature has expired',
  ERR_SAS_SIGNATURE: 'the shared access signature is not valid',
};

/**
 * SAS errors at the HTTP edge: a key we cannot trust (malformed, expired, forged) is 401
 * invalid_token with a challenge; a genuine key for another topic or without the right is 403
 * insufficient_scope (RFC 6750 §3.1 meanings).
 */
function toHttpError(err: SasError, right: Right): Error {
  const description = PUBLIC_401[err.code];
  if (description) return new InvalidToken(description, err.code, CHALLENGE);
  return new InsufficientScope(`the shared access signature does not grant ${right} on this topic`, err.code);
}

export interface SasGuardOptions {
  publicBaseUrl: string;
  keys: TenantKeyCache;
  /** PAC's word on whether the key was revoked (strict revocation) */
  isRevoked: (keyId: string) => Promise<boolean>;
  now: () => number;
}

/**
 * Checked on every request (design.md, Delivery): signature, expiry, resource, rights. The key is
 * verified with the keys of the tenant its own resource URI names, so another tenant's genuine key
 * is told apart from a forgery (403, not 401), then its resource must be this request's topic.
 */
export function sasGuard(options: SasGuardOptions) {
  const base = options.publicBaseUrl.replace(/\/+$/, '');
  const resourcePath = /^\/tenants\/([^/]+)\/topics\/[^/]+$/;

  /** the tenant a resource URI of ours names, if it is one */
  const tenantOf = (resource: string): string | undefined => {
    if (resource.slice(0, base.length).toLowerCase() !== base.toLowerCase()) return undefined;
    const tenant = resourcePath.exec(resource.slice(base.length).toLowerCase())?.[1];
    return tenant !== undefined && TenantId.safeParse(tenant).success ? tenant : undefined;
  };

  const lookup = async (promise: Promise<KeysEntry>, tenant: string): Promise<KeysEntry> => {
    try {
      return await promise;
    } catch (err) {
      throw new TemporarilyUnavailable('the tenant keys cannot be checked right now, retry later', `sas key lookup for ${tenant}: ${String(err)}`, {
        'Retry-After': String(RETRY_AFTER_SEC),
      });
    }
  };

  const verify = async (header: string, resource: string, right: Right, pathTenant: string): Promise<VerifiedSas> => {
    const keyTenant = tenantOf(parseSas(header).resource) ?? pathTenant;
    const check = (entry: KeysEntry) => verifySas(header, { resource, right, keys: entry.keys, nowSec: Math.floor(options.now() / 1000) });
    const entry = await lookup(options.keys.get(keyTenant), keyTenant);
    try {
      return check(entry);
    } catch (err) {
      // Maybe signed with a tenant key rotated since we cached: refetch once (the cache rate-limits this).
      if (!(err instanceof SasError) || err.code !== 'ERR_SAS_SIGNATURE') throw err;
      const fresh = options.keys.refetch(keyTenant, entry);
      if (!fresh) throw err;
      return check(await lookup(fresh, keyTenant));
    }
  };

  /**
   * The whole check of a request's Authorization header for `right` on the topic: resolves, or throws
   * the HTTP error. Routes that hold a request open (stream, long poll) call it again before each
   * hand-out, so a key revoked or expired meanwhile stops receiving (issue 9).
   */
  const check = async (header: string | undefined, { tenant, topic }: { tenant: string; topic: string }, right: Right): Promise<void> => {
      if (!header) throw new InvalidToken('a SharedAccessSignature Authorization header is required', 'no authorization header', CHALLENGE);
      try {
        const verified = await verify(header, topicResource(options.publicBaseUrl, tenant, topic), right, tenant);
        const revoked = await options.isRevoked(verified.keyId).catch((err: unknown) => {
          throw new TemporarilyUnavailable('the key cannot be checked right now, retry later', `revocation lookup: ${String(err)}`, {
            'Retry-After': String(RETRY_AFTER_SEC),
          });
        });
        if (revoked) throw new InvalidToken('the shared access signature has been revoked', `key ${verified.keyId} revoked`, CHALLENGE);
      } catch (err) {
        throw err instanceof SasError ? toHttpError(err, right) : err;
      }
  };

  const guard = (right: Right): RequestHandler =>
    async (req, _res, next) => {
      await check(req.get('authorization'), parseInput(TopicPath, req.params, 'path'), right);
      next();
    };
  return Object.assign(guard, { check });
}
export type SasGuard = ReturnType<typeof sasGuard>;
