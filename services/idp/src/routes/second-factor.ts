import { Router } from 'express';
import { audited, requestFields, type AuditLog } from '@keyway/audit';
import { idpRoutes, PasswordSubject, TotpEnrolment } from '@keyway/contracts';
import { bindRoute, InvalidGrant, requireBodyType, shapeResponse } from '@keyway/kit';
import type { CredentialRepository } from '../credentials/repository.ts';
import type { SecondFactorCheck } from '../credentials/second-factor-check.ts';
import type { SecondFactors } from '../credentials/second-factors.ts';
import type { VerificationGuard } from '../credentials/verification-guard.ts';
import { passwordOwner } from './password.ts';

const WRONG = 'the username or password is incorrect';

/**
 * The IdP's TOTP routes (PAS only):
 * - POST /v1/credentials/otp/verify: the login page's second step, for an account PAS has just
 *   verified the password of (it holds the pending sign-in); the same checks as a password grant's otp.
 * - POST /v1/credentials/totp: enrolment. The password is verified first (same guard as a login); an
 *   account without a factor gets one on trust (whoever holds the password first: the README says so),
 *   an account with one only with a current code or a recovery code, so a password thief cannot
 *   replace the owner's factor. Recorded as mfa.enrolled (fail closed: no secret leaves unrecorded).
 */
export function secondFactorRoutes(deps: {
  credentials: CredentialRepository;
  guard: VerificationGuard;
  factors: SecondFactors;
  check: SecondFactorCheck;
  audit: AuditLog;
  /** told of each completed second step (it opens the passkey enrolment window) */
  verified?: (sub: string) => Promise<void>;
}): Router {
  const { credentials, guard, factors, check, audit, verified } = deps;
  const router = Router();
  bindRoute(router, idpRoutes.verifyOtp, requireBodyType(idpRoutes.verifyOtp), async (req, res, input) => {
    const { sub, otp } = input.body();
    const credential = await credentials.findBySub(sub);
    if (!credential) throw new InvalidGrant(WRONG, 'unknown subject');
    await guard.admit(credential.email);
    const amr = await check.check(req, credential, otp);
    await verified?.(credential.sub);
    res.json(shapeResponse(PasswordSubject, { ...credential, amr, second_factor: true }));
  });

  bindRoute(router, idpRoutes.enrolTotp, requireBodyType(idpRoutes.enrolTotp), async (req, res, input) => {
    const { email, password, otp } = input.body();
    const credential = await passwordOwner(credentials, guard, email, password);
    const replaced = await factors.enrolled(credential.sub);
    if (replaced) {
      // a factor is replaced only by whoever also holds it (or a recovery code)
      if (otp === undefined) {
        await guard.failed(email, 'wrong_code');
        throw new InvalidGrant('a second factor is enrolled: send a current code (otp) or a recovery code to replace it', 'enrolment without the current factor');
      }
      await check.check(req, credential, otp);
    }
    const fields = { ...requestFields(req), subject: credential.sub, tenant: credential.tenant, detail: { replaced: String(replaced), factor: 'totp' } };
    const enrolment = await audited({ audit }, { action: 'mfa.enrolled', fields, writable: true, refusal: false }, () => factors.enrol(credential.sub, credential.email));
    res.set('Cache-Control', 'no-store').json(shapeResponse(TotpEnrolment, { otpauth_uri: enrolment.otpauthUri, secret: enrolment.secret, recovery_codes: enrolment.recoveryCodes, replaced }));
  });
  return router;
}
