import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Store } from '@keyway/store';
import { DPOP_HEADER, DPOP_NONCE_HEADER, DpopError, dpopNonces, verifyDpopProof, type DpopNonces } from '@keyway/tokens';
import { OAuthError, TemporarilyUnavailable } from './errors.ts';

/** how far a proof's iat may be from the server's clock, either way (RFC 9449 §11.1: seconds to minutes); PAC and the topic service */
export const DPOP_IAT_WINDOW_SEC = 60;

/** A proof refused: RFC 9449 §7.1 at a resource (401 with a DPoP challenge), §5 elsewhere (400). */
export class DpopRefused extends OAuthError {}

export interface DpopGuardOptions {
  /** the service's store: nonce secret and spent proof ids, shared by every instance */
  store: Store;
  /** where clients reach this service (its public https URL, e.g. PAS's issuer): proofs name it plus the request's path in htu */
  publicOrigin: string;
  /** answer use_dpop_nonce to a proof without a fresh server nonce (RFC 9449 §8) */
  requireNonce: boolean;
  iatWindowSec: number;
  /** a resource server (topic) answers 401 with `WWW-Authenticate: DPoP`; a token-like endpoint (PAS, PAC) 400 */
  resource: boolean;
}

export interface DpopGuard {
  /**
   * The request's proof, checked for this method and URL, the credential it goes with and the key that
   * credential is bound to. Undefined when the request carries no proof and none is needed (`jkt` unset);
   * throws DpopRefused otherwise.
   */
  check(req: Request, expected: { credential?: string; jkt?: string | undefined }): Promise<{ jkt: string } | undefined>;
  /** sets DPoP-Nonce on a response, so clients always hold a fresh one */
  offerNonce(res: Response): void;
}

const NONCE_SECRET_KEY = 'dpop:nonce-secret';
const PROOF_JTI_PREFIX = 'dpop:jti:';

/** One secret per service, in its store, so any instance accepts the nonces another issued; losing the store only makes clients fetch a new nonce. */
async function nonceSecret(store: Store): Promise<Buffer> {
  await store.set(NONCE_SECRET_KEY, randomBytes(32).toString('base64url'), { ifAbsent: true });
  const secret = await store.get(NONCE_SECRET_KEY);
  if (secret === null) throw new Error('the DPoP nonce secret vanished from the store');
  return Buffer.from(secret, 'base64url');
}

export async function dpopGuard(options: DpopGuardOptions): Promise<DpopGuard> {
  const nonces: DpopNonces | undefined = options.requireNonce ? dpopNonces(await nonceSecret(options.store)) : undefined;
  // a public URL with a path (a service behind a path-routing proxy) keeps it: clients name that URL
  const publicUrl = new URL(options.publicOrigin);
  const origin = `${publicUrl.origin}${publicUrl.pathname.replace(/\/+$/, '')}`;
  const refused = (err: DpopError): DpopRefused => {
    const headers: Record<string, string> = nonces ? { [DPOP_NONCE_HEADER]: nonces.current() } : {};
    if (options.resource) {
      headers['www-authenticate'] = `DPoP error="${err.code}", error_description="${err.message.replace(/"/g, "'")}", algs="ES256 EdDSA"`;
      return new DpopRefused(401, err.code, err.message, err.message, headers);
    }
    return new DpopRefused(400, err.code, err.message, err.message, headers);
  };
  return {
    async check(req, expected) {
      const proof = req.get(DPOP_HEADER);
      if (proof === undefined) {
        if (expected.jkt === undefined) return undefined;
        throw refused(new DpopError('invalid_dpop_proof', 'the credential is bound to a key (DPoP): a DPoP proof signed with it is required'));
      }
      // Node joins repeated headers with ", ": RFC 9449 §4.3 allows exactly one proof.
      if (proof.includes(',')) throw refused(new DpopError('invalid_dpop_proof', 'exactly one DPoP header is allowed'));
      try {
        return await verifyDpopProof(
          proof,
          {
            htm: req.method,
            htu: `${origin}${req.originalUrl}`,
            ...(expected.credential !== undefined && { credential: expected.credential }),
            ...(expected.jkt !== undefined && { jkt: expected.jkt }),
          },
          {
            ...(nonces && { nonces }),
            iatWindowSec: options.iatWindowSec,
            claimJti: (jkt, jti, expiresAt) => options.store.set(`${PROOF_JTI_PREFIX}${jkt}:${jti}`, '1', { ifAbsent: true, ttlMs: Math.max(1000, expiresAt * 1000 - Date.now() + 1000) }),
          },
        );
      } catch (err) {
        if (err instanceof DpopError) throw refused(err);
        throw err;
      }
    },
    offerNonce(res) {
      if (nonces) res.setHeader(DPOP_NONCE_HEADER, nonces.current());
    },
  };
}

/**
 * The guard made on first use, for an app factory that cannot wait (createApp is synchronous): the
 * store not answering then is a 503 for that request, and the next one tries again.
 */
export function dpopGuardOnDemand(options: DpopGuardOptions): () => Promise<DpopGuard> {
  let made: Promise<DpopGuard> | undefined;
  return () =>
    (made ??= dpopGuard(options).catch((err: unknown) => {
      made = undefined;
      throw new TemporarilyUnavailable('DPoP proofs cannot be checked right now; retry later', `dpop nonce secret: ${String(err)}`, { 'retry-after': '5' });
    }));
}
