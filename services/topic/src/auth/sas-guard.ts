import type { RequestHandler } from 'express';
import { InsufficientScope, InvalidToken, parseInput, TemporarilyUnavailable, type DpopGuard } from '@keyway/kit';
import { TopicPath, topicResource } from '@keyway/contracts';
import { checkSasUse, parseSas, SAS_SCHEME, SasError, type Right, type VerifiedSas } from '@keyway/sas';
import { RETRY_AFTER_SEC } from '../delivery/broker-errors.ts';
import type { KeyStatus } from './revocation.ts';

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
  /** PAC's word on whether a key's signature is genuine: its signed fields, or ERR_SAS_SIGNATURE (sasSignatureCache) */
  verifySignature: (sasKey: string) => Promise<VerifiedSas>;
  /** PAC's word on whether the key was revoked (strict revocation) and the DPoP key it is bound to */
  keyStatus: (keyId: string) => Promise<KeyStatus>;
  /** RFC 9449 proof checks (resource server: 401 with a DPoP challenge; proof jti spent in the store) */
  dpop: () => Promise<DpopGuard>;
  now: () => number;
}

/**
 * Checked on every request (design.md, Delivery): signature, expiry, resource, rights. The signature
 * is checked at PAC against the keys of the tenant the key's own resource URI names (the keys never
 * leave PAC), so another tenant's genuine key is told apart from a forgery (403, not 401); then its
 * resource must be this request's topic. A key PAC minted bound to a DPoP key (its holder proved
 * that key at PAC) is of use only with a proof signed by it on each request (RFC 9449 §7: ath = the
 * key as sent); an unbound key (producers, Azure tooling) needs none.
 */
export function sasGuard(options: SasGuardOptions) {
  const verify = async (header: string, resource: string, right: Right): Promise<VerifiedSas> => {
    // Malformed keys (any but the canonical spelling) and expired ones are refused here, without
    // asking PAC (either way a 401: an expired forgery is told nothing more than a forgery).
    const nowSec = Math.floor(options.now() / 1000);
    if (parseSas(header).expiry <= nowSec) throw new SasError('ERR_SAS_EXPIRED', 'the shared access signature has expired');
    const signed = await options.verifySignature(header).catch((err: unknown) => {
      if (err instanceof SasError) throw err;
      throw new TemporarilyUnavailable('the key cannot be checked right now, retry later', `sas signature check: ${String(err)}`, {
        'Retry-After': String(RETRY_AFTER_SEC),
      });
    });
    return checkSasUse(signed, { resource, right, nowSec });
  };

  /**
   * The whole check of a request's Authorization header for `right` on the topic: resolves, or throws
   * the HTTP error. Routes that hold a request open (stream, long poll) call it again before each
   * hand-out, so a key revoked or expired meanwhile stops receiving (issue 9).
   */
  const check = async (header: string | undefined, { tenant, topic }: { tenant: string; topic: string }, right: Right): Promise<{ jkt?: string | undefined }> => {
    if (!header) throw new InvalidToken('a SharedAccessSignature Authorization header is required', 'no authorization header', CHALLENGE);
    try {
      const verified = await verify(header, topicResource(options.publicBaseUrl, tenant, topic), right);
      const { revoked, jkt } = await options.keyStatus(verified.keyId).catch((err: unknown) => {
        throw new TemporarilyUnavailable('the key cannot be checked right now, retry later', `revocation lookup: ${String(err)}`, {
          'Retry-After': String(RETRY_AFTER_SEC),
        });
      });
      if (revoked) throw new InvalidToken('the shared access signature has been revoked', `key ${verified.keyId} revoked`, CHALLENGE);
      return { jkt };
    } catch (err) {
      throw err instanceof SasError ? toHttpError(err, right) : err;
    }
  };

  const guard =
    (right: Right): RequestHandler =>
    async (req, _res, next) => {
      const header = req.get('authorization');
      const { jkt } = await check(header, parseInput(TopicPath, req.params, 'path'), right);
      // once per request: the re-checks of a held request (stream, long poll) have no new proof to show
      await (await options.dpop()).check(req, { credential: header!, jkt });
      next();
    };
  return Object.assign(guard, { check });
}
export type SasGuard = ReturnType<typeof sasGuard>;
