import { Router } from 'express';
import { idpRoutes, Subject } from '@keyway/contracts';
import { bindRoute, InvalidClient, requireBodyType, shapeResponse } from '@keyway/kit';
import { TokenError, verifyClientAssertion } from '@keyway/tokens';
import type { ClientKeyRepository } from '../credentials/client-keys.ts';
import type { CredentialRepository } from '../credentials/repository.ts';
import type { VerificationGuard } from '../credentials/verification-guard.ts';

/** Assertions are one-shot proofs: five minutes is ample for a signed request to reach PAS. */
const MAX_ASSERTION_LIFETIME_SEC = 300;
const CLOCK_TOLERANCE_SEC = 30;

/**
 * POST /v1/credentials/assertion/verify (PAS only): RFC 7523 §3 checks of a private_key_jwt client
 * assertion against the client's registered keys. Any failure is one generic 401 invalid_client
 * (RFC 6749 §5.2: client authentication failed); the reason goes to the log only.
 */
/** The client an assertion claims to come from (its "sub", RFC 7523 §3), before any check: what failures are counted under. */
function claimedClient(assertion: string): string {
  try {
    const { sub } = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof sub === 'string' && /^[A-Za-z0-9._:@-]{1,128}$/.test(sub) ? `client:${sub}` : 'client:unreadable';
  } catch {
    return 'client:unreadable';
  }
}

export function assertionRoutes(credentials: CredentialRepository, keys: ClientKeyRepository, guard: VerificationGuard): Router {
  const router = Router();
  bindRoute(router, idpRoutes.verifyAssertion, requireBodyType(idpRoutes.verifyAssertion), async (_req, res, input) => {
    const { assertion, audience } = input.body();
    const claimed = claimedClient(assertion);
    await guard.admit(claimed);
    const verified = await verifyClientAssertion(assertion, {
      audience,
      clockToleranceSec: CLOCK_TOLERANCE_SEC,
      maxLifetimeSec: MAX_ASSERTION_LIFETIME_SEC,
      keyFor: (clientId, kid) => keys.find(clientId, kid),
      claimJti: (clientId, jti, expiresAt) => keys.claimJti(clientId, jti, expiresAt),
    }).catch(async (err: unknown) => {
      if (!(err instanceof TokenError)) throw err;
      await guard.failed(claimed, 'invalid_assertion');
      throw new InvalidClient(undefined, `${err.code}: ${err.message}`);
    });
    // The client_id is the user's subject id; keys are only registered for users with credentials.
    const credential = await credentials.findBySub(verified.clientId);
    if (!credential) {
      await guard.failed(claimed, 'unknown_account');
      throw new InvalidClient(undefined, 'no credentials for the client_id');
    }
    res.json(shapeResponse(Subject, credential));
  });
  return router;
}
