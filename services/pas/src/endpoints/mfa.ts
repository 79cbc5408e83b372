import { Router } from 'express';
import { audited, requestFields } from '@keyway/audit';
import { ApiError } from '@keyway/clients';
import { Email, pasRoutes, TotpEnrolment } from '@keyway/contracts';
import { bindRoute, InvalidGrant, requireBodyType, shapeResponse } from '@keyway/kit';
import { rethrowUpstream } from '../grants/authorize.ts';
import type { GrantContext } from '../grants/context.ts';
import { idpBusy, throttledLogin } from '../grants/throttled-login.ts';
import { sourceOf } from '../throttling/login-throttle.ts';
import { noStore, rejectDuplicateParams } from './token.ts';

/**
 * POST /v1/mfa/totp (Keyway extension, `keyway mfa enroll`): a person enrols a TOTP factor with their
 * password, under the login throttle (a wrong password or code counts as a failed login). The IdP
 * decides (first factor on trust, a replacement only with the current factor) and records it; PAS
 * records the request as mfa.enrolled in its own stream, or the refusal as login.failed.
 */
export function mfaEndpoint(context: GrantContext): Router {
  const router = Router();
  bindRoute(router, pasRoutes.enrolTotp, noStore, requireBodyType(pasRoutes.enrolTotp), rejectDuplicateParams, async (req, res, input) => {
    const { username, password, otp } = input.body();
    const source = sourceOf(req);
    const enrolment = await audited(
      context,
      { action: 'mfa.enrolled', fields: requestFields(req), refusal: () => ({ action: 'login.failed' }), noise: { gate: context.noise, source } },
      async (audit) => {
        await context.noise.admit(source);
        const email = Email.safeParse(username);
        if (email.success) audit.note({ detail: { username: email.data } });
        const answer = await throttledLogin(context, source, audit, email.success ? email.data : undefined, async () => {
          if (!email.success) throw audit.refuse(new InvalidGrant('the username or password is incorrect', 'the username is not an email address'), 'login.failed');
          return context.idp.enrolTotp(email.data, password, otp).catch((err: unknown) => {
            if (err instanceof ApiError && err.code === 'invalid_grant') {
              // the IdP's own words when the factor to replace is missing; one answer otherwise
              const replacing = err.description.startsWith('a second factor is enrolled');
              throw audit.refuse(new InvalidGrant(replacing ? err.description : 'the username, password or code is incorrect'), 'login.failed');
            }
            throw idpBusy(err, audit) ?? rethrowUpstream(err);
          });
        });
        audit.note({ detail: { replaced: String(answer.replaced) } });
        return answer;
      },
    );
    res.json(shapeResponse(TotpEnrolment, enrolment));
  });
  return router;
}
