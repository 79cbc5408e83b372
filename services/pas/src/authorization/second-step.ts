import { z } from 'zod';
import type { AuditScope } from '@keyway/audit';
import { ApiError } from '@keyway/clients';
import { AuthenticationContext, OPERATOR_SCOPE } from '@keyway/contracts';
import { InvalidGrant, OAuthError } from '@keyway/kit';
import type { Store } from '@keyway/store';
import { rethrowUpstream } from '../grants/authorize.ts';
import { authTimeNow, type GrantContext, type GrantOrigin } from '../grants/context.ts';
import { authenticatePassword, type AuthenticatedPerson } from '../grants/password.ts';
import { idpBusy, throttledLogin } from '../grants/throttled-login.ts';
import { sha256 } from './pending-requests.ts';

/** How long the code page may be filled in after a correct password (then the sign-in starts again). */
const SECOND_STEP_TTL_MS = 5 * 60 * 1000;

/**
 * The password was right and a code is asked next: not an error of the person, a step of the login.
 * Recorded as mfa.challenged (the trail shows a password that was right without the second factor).
 */
export class SecondFactorPending extends OAuthError {
  constructor() {
    super(401, 'interaction_required', 'enter the code from your authenticator app or a recovery code', 'password verified, second factor pending');
  }
}

const Held = z.object({ sub: z.string(), tenant: z.string(), email: z.string(), authentication: AuthenticationContext });

/**
 * The login page's second step (issue 14): after a correct password for an account with a second
 * factor (always for scope operator), PAS holds who passed the password, server-side under the
 * pending request's hash, and asks for a code; the code page's form carries only the pending request
 * id (and its browser cookie), never the password.
 */
export function secondSteps(store: Store) {
  const key = (id: string) => `authz-second-step:${sha256(id)}`;
  return {
    hold: (id: string, person: AuthenticatedPerson) =>
      store.set(key(id), JSON.stringify({ sub: person.sub, tenant: person.tenant, email: person.email, authentication: person.authentication }), { ttlMs: SECOND_STEP_TTL_MS }),
    async find(id: string): Promise<z.infer<typeof Held> | undefined> {
      const raw = await store.get(key(id));
      return raw === null ? undefined : Held.parse(JSON.parse(raw));
    },
    drop: (id: string) => store.del(key(id)),
  };
}
export type SecondSteps = ReturnType<typeof secondSteps>;

/** The first step: email and password; the sign-in goes on at once unless a code is needed. */
export function passwordStep(context: GrantContext & { secondSteps: SecondSteps }, origin: GrantOrigin, pending: { id: string; scope: string }, form: { email: string; password: string }) {
  return async (audit: AuditScope): Promise<AuthenticatedPerson> => {
    const person = await authenticatePassword(context, origin, audit, form.email, form.password);
    const operator = pending.scope.split(' ').includes(OPERATOR_SCOPE);
    if (!person.secondFactor && !operator) return person;
    await context.secondSteps.hold(pending.id, person);
    throw audit.refuse(new SecondFactorPending(), 'mfa.challenged');
  };
}

/**
 * The second step: a code for the person held by the first, checked at the IdP under the same login
 * throttle as a password (a wrong code counts as a failed login of the account). auth_time is now:
 * the moment every factor in amr has been proven.
 */
export function codeStep(context: GrantContext & { secondSteps: SecondSteps }, origin: GrantOrigin, pendingId: string, otp: string) {
  return async (audit: AuditScope): Promise<AuthenticatedPerson> => {
    const held = await context.secondSteps.find(pendingId);
    if (!held) throw new InvalidGrant('the sign-in has expired: start again', 'no password step held for this request');
    audit.note({ subject: held.sub, tenant: held.tenant, detail: { username: held.email } });
    const verified = await throttledLogin(context, origin.source, audit, held.email, () =>
      context.idp.verifyOtp(held.sub, otp).catch((err: unknown) => {
        if (err instanceof ApiError && err.code === 'invalid_grant') throw audit.refuse(new InvalidGrant('the code is incorrect'), 'mfa.failed');
        throw idpBusy(err, audit) ?? rethrowUpstream(err);
      }),
    );
    await context.secondSteps.drop(pendingId);
    audit.also({ action: 'mfa.succeeded', outcome: 'success', reason: 'otp' });
    return { sub: held.sub, tenant: held.tenant, email: held.email, authentication: { amr: verified.amr, auth_time: authTimeNow(context.settings) }, secondFactor: true };
  };
}
