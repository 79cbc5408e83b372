import { Router } from 'express';
import { bindRoute, InvalidGrant, requireBodyType, shapeResponse } from '@keyway/kit';
import { idpRoutes, PasswordSubject } from '@keyway/contracts';
import { dummyHash, verifyPassword } from '../credentials/password-hash.ts';
import type { Credential, CredentialRepository } from '../credentials/repository.ts';
import type { SecondFactorCheck } from '../credentials/second-factor-check.ts';
import type { VerificationGuard } from '../credentials/verification-guard.ts';

/**
 * POST /v1/credentials/password/verify (PAS only): one answer for a wrong password and an unknown user.
 * Throttled per account and bounded in concurrent scrypt work (credentials/verification-guard.ts);
 * every failure is counted for the trail. With `otp`, the account's second factor is checked too
 * (credentials/second-factor-check.ts): a wrong or spent code is the same refusal as a wrong password.
 * `verified`: told of each sign-in that proved every factor the account has (it opens the passkey
 * enrolment window; a password alone does not for an account with a second factor).
 */
export function passwordRoutes(credentials: CredentialRepository, guard: VerificationGuard, factors: SecondFactorCheck, verified?: (sub: string) => Promise<void>): Router {
  const router = Router();
  bindRoute(router, idpRoutes.verifyPassword, requireBodyType(idpRoutes.verifyPassword), async (req, res, input) => {
    const { email, password, otp } = input.body();
    const credential = await passwordOwner(credentials, guard, email, password);
    const amr = otp === undefined ? (['pwd'] as const) : await factors.check(req, credential, otp);
    // a code that passed proves the factor exists: its record is read once, by the check
    const second_factor = otp !== undefined || (await factors.enrolled(credential.sub));
    if (!second_factor || otp !== undefined) await verified?.(credential.sub);
    res.json(shapeResponse(PasswordSubject, { ...credential, amr: [...amr], second_factor }));
  });
  return router;
}

/**
 * The account an email and password belong to, checked under the guard (throttled per account, scrypt
 * bounded, an unknown account costing the same hash as a known one); any failure is counted and is the
 * one answer for a wrong password and an unknown user. Every route that takes a password goes through it.
 */
export async function passwordOwner(credentials: CredentialRepository, guard: VerificationGuard, email: string, password: string): Promise<Credential> {
  await guard.admit(email);
  const credential = await credentials.findByEmail(email);
  const stored = credential?.passwordHash ?? (await dummyHash());
  const matches = await guard.hashing.run(() => verifyPassword(password, stored));
  if (!credential?.passwordHash || !matches) {
    await guard.failed(email, !credential ? 'unknown_account' : !credential.passwordHash ? 'no_password' : 'wrong_password');
    throw new InvalidGrant('the username or password is incorrect', credential ? 'wrong password' : 'unknown user');
  }
  return credential;
}
