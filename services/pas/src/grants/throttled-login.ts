import { ApiError } from '@keyway/clients';
import { OAuthError, TemporarilyUnavailable, tooManyRequests } from '@keyway/kit';
import type { AuditScope } from '@keyway/audit';
import type { GrantContext } from './context.ts';

/**
 * Runs the credential check of a login (the password, or the client assertion) under the login
 * throttle (throttling/login-throttle.ts): refused with 429 and Retry-After before the IdP is asked
 * when a limit is reached; a refused credential (the 400/401 `verify` throws) counts as a failure; a
 * success resets the account's failures from that source.
 *
 * The trail: the window's first throttled attempt of a key is one login.throttled event (rule,
 * retry-after); every later one is noise, counted per source and minute (the step's noise gate). The IdP's
 * own 429 (its per-account limit, the second line) is passed on as such.
 */
export async function throttledLogin<T>(context: GrantContext, source: string, audit: AuditScope, account: string | undefined, verify: () => Promise<T>): Promise<T> {
  const throttled = await context.throttle.check(account, source);
  if (throttled) {
    const err = tooManyRequests(throttled.state, `${throttled.rule}: ${throttled.state.count} failed logins in the window`);
    if (!throttled.state.firstRefusal) throw audit.refuse(err, 'login.throttled', { noise: true });
    audit.note({ detail: { rule: throttled.rule, retry_after: String(throttled.state.retryAfterSec), failures: String(throttled.state.count) } });
    throw audit.refuse(err, 'login.throttled', { reason: throttled.rule });
  }
  return context.throttle
    .inFlight(source, async () => {
      try {
        const result = await verify();
        await context.throttle.succeeded(account, source);
        return result;
      } catch (err) {
        if (err instanceof OAuthError && (err.status === 400 || err.status === 401)) await context.throttle.failed(account, source);
        throw err;
      }
    })
    .catch((err: unknown) => {
      if (err instanceof OAuthError && err.status === 429) throw audit.refuse(err, 'login.throttled', { noise: true });
      throw err;
    });
}

/**
 * The IdP's 429 (its per-account limit) or 503 (its verification queue is full), passed on with its
 * Retry-After. Either is what a flood causes, so it is noise in the trail (counted per source), not
 * one event per refused attempt.
 */
export function idpBusy(err: unknown, audit: AuditScope): OAuthError | undefined {
  if (!(err instanceof ApiError) || (err.status !== 429 && err.status !== 503)) return undefined;
  const retryAfterSec = Math.max(1, Number(err.retryAfter) || 1);
  const busy =
    err.status === 429
      ? tooManyRequests({ retryAfterSec }, `idp: ${err.description}`)
      : new TemporarilyUnavailable('too many logins are being checked; retry later', `idp: ${err.description}`, { 'Retry-After': String(retryAfterSec) });
  return audit.refuse(busy, 'login.throttled', { noise: true });
}
