import type { Request } from 'express';
import { requestFields, type AuditLog } from '@keyway/audit';
import type { Amr } from '@keyway/contracts';
import { InvalidGrant } from '@keyway/kit';
import type { Credential } from './repository.ts';
import type { SecondFactors } from './second-factors.ts';
import type { VerificationGuard } from './verification-guard.ts';

/**
 * A second factor's code checked for an account whose password is verified: a success is recorded
 * (mfa.succeeded, with the method and the recovery codes left) before it is answered (fail closed); a
 * failure counts against the account like a wrong password (the guard's per-account limit) and is
 * recorded (mfa.failed, with the reason: wrong, reused, none enrolled), then refused with the same
 * invalid_grant as a wrong password.
 */
export function secondFactorCheck(factors: SecondFactors, guard: VerificationGuard, audit: AuditLog) {
  return {
    enrolled: (sub: string) => factors.enrolled(sub),
    async check(req: Request, credential: Credential, otp: string): Promise<Amr[]> {
      const result = await factors.verify(credential.sub, otp);
      const fields = { ...requestFields(req), subject: credential.sub, tenant: credential.tenant };
      if (!result.ok) {
        await guard.failed(credential.email, result.reason);
        await audit.record({ ...fields, action: 'mfa.failed', outcome: 'denied', reason: result.reason }).catch(() => undefined);
        throw new InvalidGrant('the username or password is incorrect', `second factor: ${result.reason}`);
      }
      await audit.record({ ...fields, action: 'mfa.succeeded', outcome: 'success', detail: { method: result.method, recovery_left: String(result.recoveryLeft) } });
      return ['pwd', 'otp', 'mfa'];
    },
  };
}
export type SecondFactorCheck = ReturnType<typeof secondFactorCheck>;
