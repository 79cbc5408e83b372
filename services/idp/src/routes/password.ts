import { Router } from 'express';
import { bindRoute, InvalidGrant, requireBodyType, shapeResponse } from '@keyway/kit';
import { idpRoutes, Subject } from '@keyway/contracts';
import { dummyHash, verifyPassword } from '../credentials/password-hash.ts';
import type { CredentialRepository } from '../credentials/repository.ts';
import type { VerificationGuard } from '../credentials/verification-guard.ts';

/**
 * POST /v1/credentials/password/verify (PAS only): one answer for a wrong password and an unknown user.
 * Throttled per account and bounded in concurrent scrypt work (credentials/verification-guard.ts);
 * every failure is counted for the trail. `verified`: told of each success (it opens the passkey
 * enrolment window).
 */
export function passwordRoutes(credentials: CredentialRepository, guard: VerificationGuard, verified?: (sub: string) => Promise<void>): Router {
  const router = Router();
  bindRoute(router, idpRoutes.verifyPassword, requireBodyType(idpRoutes.verifyPassword), async (_req, res, input) => {
    const { email, password } = input.body();
    await guard.admit(email);
    const credential = await credentials.findByEmail(email);
    const stored = credential?.passwordHash ?? (await dummyHash());
    const matches = await guard.hashing.run(() => verifyPassword(password, stored));
    if (!credential?.passwordHash || !matches) {
      await guard.failed(email, !credential ? 'unknown_account' : !credential.passwordHash ? 'no_password' : 'wrong_password');
      throw new InvalidGrant('the username or password is incorrect', credential ? 'wrong password' : 'unknown user');
    }
    await verified?.(credential.sub);
    res.json(shapeResponse(Subject, credential));
  });
  return router;
}
